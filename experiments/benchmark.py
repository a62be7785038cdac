r"""Benchmark the real jitted train, eval and rewiring steps of a model.

  python -m experiments.benchmark --model resnet19 --batch_size 32 \
      --time_steps 2 [--algorithm pq_dst] [--repeats 10] \
      [--precision fp32|bf16] [--conv_impl auto|matmul_wgrad|xla] \
      [--remat none|neuron|block]
  python -m experiments.benchmark --model resnet19 --sweep \
      [--sweep_batch_sizes 8,32] [--sweep_time_steps 2,4]
  python -m experiments.benchmark --model convnet --sweep  # the study's
  python -m experiments.benchmark --model resnet19 --batch_size 32 \
      --time_steps 2 --repeats 7 --paired unroll=1,true
  python -m experiments.benchmark --smoke   # a tiny model, 1 repeat, seconds
  python -m experiments.benchmark --sparse_inference --model mlp \
      --input_shape 28,28,1 --time_steps 4 --repeats 50

It builds the model, masks at 50% density (the algorithm's initial masks),
the optimizer and the three jitted steps exactly as training does; compiles
and warms them up, then times the median of ``--repeats`` calls of each with
``block_until_ready``. It prints a table, then one JSON line with
``train_samples_per_s``, ``eval_samples_per_s``, ``train_step_s``,
``rewire_step_s``, ``compile_s``, ``peak_rss_mib``,
``model_gflop_per_sample`` (XLA's cost analysis of the train step) and
``achieved_gflops`` (plus ``xla_memory_mib``: XLA's buffer sizes of the
compiled train step, arguments + outputs + temporaries, which unlike the
process-wide peak RSS is per configuration). ``--sweep`` runs every batch size
x T (by default the model's ``SWEEPS``: for the small models the
Fashion-MNIST study's batch 128, T = 4 and its neighbours) and prints a table of cost and memory, then one JSON line holding the list
of rows. ``--smoke`` is a tiny convnet on 8x8 input with one repeat; the test
suite runs it. Inputs are random: the step cost does not depend on the
data, only on shapes and the spike pattern.

``--sparse_inference`` times inference of the spiking MLP with masks at each
of ``--sparse_connectivities`` (every layer at that connectivity, uniform
random masks) at each of ``--sparse_batch_sizes``: our dense-kernel eval
forward pass (``model.apply``) against the same network with its dense layers
as sparse gathers of the active inputs per output (``gather``) and as
``jax.experimental.sparse`` BCOO products (``bcoo``), see
``experiments/sparse_inference.py``. Weights are scaled by ``2 / sqrt(c)``
so that the network fires as a trained one does (about 26% and 16% of the
neurons per step); the times do not depend on the values. The three are
timed alternately, call by call, in one process; it prints a table, then
one JSON line holding the rows.

Like ``experiments/main.py`` it restarts itself once with transparent huge
pages for host memory (``snn_sparse/platform/hugepages.py``); the JSON line's
``malloc`` says which allocator setting was measured
(``SNN_SPARSE_HUGEPAGES=0`` measures glibc's default).
"""

from __future__ import annotations

import dataclasses
import json
import resource
import statistics
import time

from absl import app, flags
import jax
import numpy as np

from experiments import sparse_inference as sparse_lib
from experiments.configs import default
from snn_sparse.training import parallel, train
from snn_sparse.platform import hugepages
from snn_sparse import models, sparsity
from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.training import steps as steps_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "resnet19", "Model name.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("time_steps", 2, "Simulation steps T.")
flags.DEFINE_string("algorithm", "pq_dst", "Sparsity algorithm.")
flags.DEFINE_string("scope", "layer", "PQ scope: layer, neuron or global.")
flags.DEFINE_integer("repeats", 10, "Timed calls per step (median).")
flags.DEFINE_integer("num_classes", 10, "Output classes.")
flags.DEFINE_list("input_shape", [], "H,W,C of one input image (default: "
                  "what the model is trained on, INPUT_SHAPES; e.g. "
                  "--model mlp --input_shape 28,28,1).")
flags.DEFINE_integer("num_devices", 0, "Devices of the data-parallel mesh "
                     "(0 or 1: one device).")
flags.DEFINE_enum("precision", "fp32", ["fp32", "bf16"],
                  "Compute dtype of conv/dense layers (weights stay fp32).")
flags.DEFINE_enum("conv_impl", "auto", ["auto", "matmul_wgrad", "xla"],
                  "Convolution implementation (snn_sparse.platform.conv_cpu).")
flags.DEFINE_enum("remat", "none", ["none", "neuron", "block"],
                  "Rematerialisation of the model (see models.SpikingModel).")
flags.DEFINE_bool("sweep", False, "Sweep --sweep_batch_sizes x "
                  "--sweep_time_steps and print a table.")
flags.DEFINE_list("sweep_batch_sizes", [], "Batch sizes to sweep (default: "
                  "the model's SWEEPS entry).")
flags.DEFINE_list("sweep_time_steps", [], "T values to sweep (default: "
                  "the model's SWEEPS entry).")
flags.DEFINE_bool("smoke", False, "A tiny model and one repeat (for tests).")
flags.DEFINE_bool("sparse_inference", False, "Time dense-kernel against "
                  "sparse inference of the MLP's dense layers.")
flags.DEFINE_list("sparse_connectivities", ["0.1", "0.3"],
                  "--sparse_inference: connectivity of every layer.")
flags.DEFINE_list("sparse_batch_sizes", ["1", "128"],
                  "--sparse_inference: batch sizes.")
flags.DEFINE_string("paired", "", "FIELD=V1,V2[,...] with FIELD a "
                    "config.model field, e.g. conv_impl=xla,auto or "
                    "unroll=1,true: time the train steps of these variants "
                    "alternately, call by call, in one process (robust to a "
                    "shared, noisy machine).")

PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}
SMOKE = dict(model_name="convnet", batch_size=4, time_steps=2, repeats=1,
             input_shape=(8, 8, 1),
             model_overrides={"features": (4, 8), "hidden": 16})

# Input shape per model: what it is trained on.
INPUT_SHAPES = {"mlp": (8, 8, 1), "convnet": (28, 28, 1),
                "convnet6x2": (32, 32, 3), "resnet19": (32, 32, 3),
                "vggsnn": (48, 48, 2)}

# Default --sweep per model: (batch sizes, T values). The small models cover
# the Fashion-MNIST study's setting (batch 128, T = 4) and its neighbours.
SWEEPS = {"mlp": ((32, 64, 128, 256), (2, 4, 8)),
          "convnet": ((32, 64, 128, 256), (2, 4, 8)),
          "convnet6x2": ((32, 64), (2, 4)),
          "resnet19": ((8, 32), (2, 4)),
          "vggsnn": ((8,), (5, 10))}


def sweep_settings(model_name: str, batch_sizes: list[str],
                   time_steps: list[str]) -> list[tuple[int, int]]:
  """``(batch_size, T)`` pairs of a sweep: the flags, else ``SWEEPS``."""
  default_batches, default_steps = SWEEPS[model_name]
  return [(int(b), int(t)) for t in (time_steps or default_steps)
          for b in (batch_sizes or default_batches)]


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost.get("flops", 0.0)) if cost else 0.0


def _memory_mib(compiled) -> float:
  """Arguments + outputs + temporaries of a compiled step, in MiB (or -1)."""
  try:
    mem = compiled.memory_analysis()
    total = (mem.argument_size_in_bytes + mem.output_size_in_bytes
             + mem.temp_size_in_bytes - mem.alias_size_in_bytes)
  except (AttributeError, NotImplementedError, TypeError):
    return -1.0
  return total / 2**20


def setup(model_name: str, batch_size: int, time_steps: int, algorithm: str,
          scope: str, num_classes: int = 10, precision: str = "fp32",
          conv_impl: str = "auto", remat: str = "none", input_shape=None,
          model_overrides=None, num_devices: int = 0):
  """The model's state (masks at 50%), a random batch and the trainer's steps.

  Returns ``(algo, state, batch, steps)`` with ``steps`` the trainer's own
  ``steps.make_steps`` on a mesh of ``num_devices`` devices (0 or 1: one
  device; more: the batch split over them, the state replicated).
  """
  config = default.get_config()
  config.model.name = model_name
  config.model.dtype = PRECISIONS[precision]
  config.model.conv_impl = conv_impl
  config.model.remat = remat
  for key, value in (model_overrides or {}).items():
    config.model[key] = value
  config.time_steps = time_steps
  config.sparsity.algorithm = algorithm
  config.sparsity.scope = scope
  total_steps = 1000
  # Images repeated over T, as the trainer feeds them; VGGSNN's data are
  # event frames, whose first layer cannot be run once.
  model = train.create_model(config, num_classes,
                             static_images=model_name != "vggsnn")
  algo = sparsity.from_config(config.sparsity, total_steps=total_steps)
  tx = train.create_optimizer(config, algo, steps_per_epoch=100,
                              steps_per_iteration=total_steps,
                              total_steps=total_steps)
  shape = tuple(input_shape or INPUT_SHAPES[model_name])
  state = train.initial_state(config, model, algo, tx, shape)
  rng = np.random.default_rng(0)
  batch = {"input": rng.normal(size=(batch_size,) + shape).astype(np.float32),
           "label": rng.integers(0, num_classes, batch_size).astype(np.int32)}
  mesh = parallel.create_mesh(num_devices or 1)
  state = parallel.replicate(state, mesh)
  batch = parallel.shard_batch(batch, mesh)
  return algo, state, batch, steps_lib.make_steps(
      algo, loss=config.loss, time_steps=config.time_steps, mesh=mesh)


def run(model_name: str, batch_size: int, time_steps: int, algorithm: str,
        scope: str, repeats: int, num_classes: int = 10,
        precision: str = "fp32", conv_impl: str = "auto",
        remat: str = "none", input_shape=None,
        model_overrides=None, num_devices: int = 0) -> dict:
  """Builds and times the steps; returns the figures of the JSON line.

  The steps are the trainer's own (``steps.make_steps``), see ``setup``.
  """
  algo, state, batch, steps = setup(
      model_name, batch_size, time_steps, algorithm, scope, num_classes,
      precision, conv_impl, remat, input_shape, model_overrides, num_devices)

  start = time.perf_counter()
  compiled_train = steps.train.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  flop_per_sample = _flops(compiled_train) / batch_size
  memory_mib = _memory_mib(compiled_train)
  state, _ = compiled_train(state, batch)  # warm-up
  steps.evaluate(state, batch)
  grads = None
  if steps.train_with_grads:
    state, _, grads = steps.train_with_grads(state, batch)
  state, _, _ = steps.rewire(state, grads)

  holder = {"state": state}

  def one_train():
    holder["state"], out = compiled_train(holder["state"], batch)
    return out

  train_s = _median_seconds(one_train, repeats)
  eval_s = _median_seconds(lambda: steps.evaluate(holder["state"], batch),
                           repeats)

  def one_rewire():
    holder["state"], _, fingerprint = steps.rewire(holder["state"], grads)
    return fingerprint

  rewire_s = (_median_seconds(one_rewire, repeats)
              if algo.has_rewire_event else 0.0)
  return {
      "model": model_name, "batch_size": batch_size, "time_steps": time_steps,
      "input_shape": list(input_shape or INPUT_SHAPES[model_name]),
      "algorithm": algorithm, "scope": scope, "precision": precision,
      "conv_impl": conv_impl, "remat": remat,
      "train_samples_per_s": batch_size / train_s,
      "eval_samples_per_s": batch_size / eval_s,
      "train_step_s": train_s, "eval_step_s": eval_s,
      "rewire_step_s": rewire_s, "compile_s": compile_s,
      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "xla_memory_mib": memory_mib,
      "model_gflop_per_sample": flop_per_sample / 1e9,
      "achieved_gflops": flop_per_sample * batch_size / train_s / 1e9,
      "devices": f"{num_devices or 1}x {jax.devices()[0].platform}",
      "malloc": hugepages.status(),
  }


def parse_paired(spec: str) -> tuple[str, list]:
  """``"FIELD=V1,V2"`` -> ``(FIELD, [V1, V2])``; ints and true/false parsed."""
  field, sep, values = spec.partition("=")
  if not sep or not field or not values:
    raise ValueError(f"--paired must look like FIELD=V1,V2 (e.g. "
                     f"conv_impl=xla,auto); got {spec!r}.")

  def parse(value: str):
    if value.lower() in ("true", "false"):
      return value.lower() == "true"
    try:
      return int(value)
    except ValueError:
      return value

  return field, [parse(v) for v in values.split(",")]


def run_paired(model_name: str, batch_size: int, time_steps: int,
               field: str, values, repeats: int, num_classes: int = 10,
               precision: str = "fp32", input_shape=None) -> dict:
  """Train-step medians of several values of one model field, timed alternately.

  Each round calls every variant's compiled train step once, so a change of
  machine load hits all of them alike. Returns the median step time per
  variant and the median over rounds of each one's time divided by the
  first one's.
  """
  config = default.get_config()
  config.model.name = model_name
  fields = {f.name for f in dataclasses.fields(
      train.create_model(config, num_classes))} - {"parent", "name"}
  if field not in fields:
    raise ValueError(f"--paired: {field!r} is not a field of model "
                     f"{model_name!r}; choose one of {sorted(fields)}.")
  names = [str(v) for v in values]
  states, compiled = {}, {}
  for name, value in zip(names, values):
    _, state, batch, steps = setup(
        model_name, batch_size, time_steps, algorithm="pq_dst",
        scope="layer", num_classes=num_classes, precision=precision,
        input_shape=input_shape, model_overrides={field: value})
    compiled[name] = steps.train.lower(state, batch).compile()
    states[name], _ = compiled[name](state, batch)  # warm-up
  times = {name: [] for name in names}
  for _ in range(repeats):
    for name in names:
      start = time.perf_counter()
      states[name], out = compiled[name](states[name], batch)
      jax.block_until_ready(out)
      times[name].append(time.perf_counter() - start)
  base = times[names[0]]
  return {"model": model_name, "batch_size": batch_size,
          "time_steps": time_steps,
          "input_shape": list(input_shape or INPUT_SHAPES[model_name]),
          "repeats": repeats, "field": field,
          "train_step_s": {k: statistics.median(v) for k, v in times.items()},
          "ratio_to_first": {k: statistics.median(
              [t / b for t, b in zip(v, base)]) for k, v in times.items()},
          "malloc": hugepages.status()}


def sparse_inference(model_name: str = "mlp", connectivities=(0.1, 0.3),
                     batch_sizes=(1, 128), time_steps: int = 4,
                     input_shape=(28, 28, 1), repeats: int = 20,
                     num_classes: int = 10, model_overrides=None,
                     seed: int = 0) -> list[dict]:
  """Dense-kernel against sparse inference of the MLP's dense layers.

  For each connectivity ``c`` (every kernel masked uniformly at random to
  exactly that fraction, its weights scaled by ``2 / sqrt(c)`` so that the
  network fires) and batch size: the median seconds of one jitted eval
  forward pass ``[T, B, H, W, C] -> [T, B, classes]`` of ``model.apply``
  (``dense_s``), and of the same network with its dense layers as gathers
  (``gather_s``) or BCOO products (``bcoo_s``), timed alternately call by
  call; the speedups over dense; and each sparse path's largest logit
  difference from the dense one (float rounding; a spike flipped by
  rounding would show here).
  """
  if model_name != "mlp":
    raise ValueError(f"--sparse_inference times the MLP (its layers are all "
                     f"dense); got --model {model_name}.")
  model = models.create(model_name, num_classes=num_classes,
                        **(model_overrides or {}))
  shape = tuple(input_shape)
  rng = np.random.default_rng(seed)
  variables = model.init(jax.random.key(seed),
                         np.zeros((time_steps, 1) + shape, np.float32),
                         train=False)
  dense_apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  sparse_apply = {
      f: jax.jit(lambda ops, x, f=f: sparse_lib.sparse_mlp_apply(
          model, ops, x, f)) for f in ("gather", "bcoo")}
  rows = []
  for c in connectivities:
    masks = masks_lib.init_masks(variables["params"], method="uniform",
                                 density=float(c),
                                 key=jax.random.key(seed + 1))
    params = jax.tree.map(
        lambda m, w: w if m is None else w * m * (2.0 / np.sqrt(c)),
        masks, variables["params"], is_leaf=masks_lib.is_none)
    ops = {f: sparse_lib.sparse_layers(params, masks, f)
           for f in ("gather", "bcoo")}
    for b in batch_sizes:
      x = rng.normal(size=(time_steps, b) + shape).astype(np.float32)
      calls = {"dense": lambda: dense_apply({"params": params}, x),
               **{f: (lambda f=f: sparse_apply[f](ops[f], x))
                  for f in ("gather", "bcoo")}}
      outs = {k: np.asarray(fn()) for k, fn in calls.items()}  # compile
      times = {k: [] for k in calls}
      for _ in range(repeats):
        for k, fn in calls.items():
          start = time.perf_counter()
          jax.block_until_ready(fn())
          times[k].append(time.perf_counter() - start)
      med = {k: statistics.median(v) for k, v in times.items()}
      rows.append({
          "model": model_name, "connectivity": float(c), "batch_size": b,
          "time_steps": time_steps, "input_shape": list(shape),
          "repeats": repeats, "dense_s": med["dense"],
          "gather_s": med["gather"], "bcoo_s": med["bcoo"],
          "gather_speedup": med["dense"] / med["gather"],
          "bcoo_speedup": med["dense"] / med["bcoo"],
          "gather_max_abs_diff": float(np.max(np.abs(
              outs["gather"] - outs["dense"]))),
          "bcoo_max_abs_diff": float(np.max(np.abs(
              outs["bcoo"] - outs["dense"]))),
          "malloc": hugepages.status()})
  return rows


def _print_sparse_table(rows: list[dict]) -> None:
  columns = ("connectivity", "batch_size", "dense_s", "gather_s", "bcoo_s",
             "gather_speedup", "bcoo_speedup")
  print("  ".join(c.rjust(14) for c in columns))
  for row in rows:
    print("  ".join((f"{row[c]:.4g}" if isinstance(row[c], float)
                     else str(row[c])).rjust(14) for c in columns))


def _print_table(rows: list[dict]) -> None:
  columns = ("batch_size", "time_steps", "train_samples_per_s",
             "train_step_s", "eval_samples_per_s", "model_gflop_per_sample",
             "achieved_gflops", "xla_memory_mib", "peak_rss_mib")
  print("  ".join(c.rjust(12) for c in columns))
  for row in rows:
    print("  ".join((f"{row[c]:.4g}" if isinstance(row[c], float)
                     else str(row[c])).rjust(12) for c in columns))


def parse_input_shape(values: list[str]) -> tuple[int, int, int] | None:
  """``["28", "28", "1"]`` -> ``(28, 28, 1)``; ``[]`` -> ``None``."""
  if not values:
    return None
  try:
    shape = tuple(int(v) for v in values)
  except ValueError:
    shape = ()
  if len(shape) != 3 or min(shape) < 1:
    raise ValueError(f"--input_shape must be H,W,C (three positive "
                     f"integers, e.g. 28,28,1); got {','.join(values)!r}.")
  return shape


def main(argv):
  del argv
  input_shape = parse_input_shape(FLAGS.input_shape)
  common = dict(algorithm=FLAGS.algorithm, scope=FLAGS.scope,
                num_classes=FLAGS.num_classes, precision=FLAGS.precision,
                conv_impl=FLAGS.conv_impl, remat=FLAGS.remat,
                num_devices=FLAGS.num_devices)
  if FLAGS.paired:
    field, values = parse_paired(FLAGS.paired)
    print(json.dumps(run_paired(
        FLAGS.model, FLAGS.batch_size, FLAGS.time_steps, field, values,
        FLAGS.repeats, FLAGS.num_classes, FLAGS.precision, input_shape)))
    return
  if FLAGS.sparse_inference:
    rows = sparse_inference(
        FLAGS.model,
        connectivities=[float(c) for c in FLAGS.sparse_connectivities],
        batch_sizes=[int(b) for b in FLAGS.sparse_batch_sizes],
        time_steps=FLAGS.time_steps, input_shape=input_shape or (28, 28, 1),
        repeats=FLAGS.repeats, num_classes=FLAGS.num_classes)
    _print_sparse_table(rows)
    print(json.dumps({"sparse_inference": rows}))
    return
  if FLAGS.smoke:
    out = run(**SMOKE, **common)
  elif FLAGS.sweep:
    rows = [run(FLAGS.model, b, t, repeats=FLAGS.repeats,
                input_shape=input_shape, **common)
            for b, t in sweep_settings(FLAGS.model, FLAGS.sweep_batch_sizes,
                                       FLAGS.sweep_time_steps)]
    _print_table(rows)
    print(json.dumps({"sweep": rows}))
    return
  else:
    out = run(FLAGS.model, FLAGS.batch_size, FLAGS.time_steps,
              repeats=FLAGS.repeats, input_shape=input_shape, **common)
  width = max(map(len, out))
  for key, value in out.items():
    shown = f"{value:.4g}" if isinstance(value, float) else value
    print(f"{key.ljust(width)}  {shown}")
  print(json.dumps(out))


if __name__ == "__main__":
  hugepages.reexec()
  app.run(main)
