r"""Benchmark the real jitted train, eval and rewiring steps of a model.

  python -m experiments.benchmark --model resnet19 --batch_size 32 \
      --time_steps 2 [--algorithm pq_dst] [--repeats 10]

It builds the model, masks at 50% density (the algorithm's initial masks),
the optimizer and the three jitted steps exactly as training does; compiles
and warms them up, then times the median of ``--repeats`` calls of each with
``block_until_ready``. It prints a table, then one JSON line with
``train_samples_per_s``, ``eval_samples_per_s``, ``train_step_s``,
``rewire_step_s``, ``compile_s``, ``peak_rss_mib``,
``model_gflop_per_sample`` (XLA's cost analysis of the train step) and
``achieved_gflops``. Inputs are random: the step cost does not depend on the
data, only on shapes and the spike pattern.
"""

from __future__ import annotations

import json
import resource
import statistics
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments.configs import default
from snn_sparse import optimizers, steps, train
from snn_sparse.sparsity import algorithms

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "resnet19", "Model name.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("time_steps", 2, "Simulation steps T.")
flags.DEFINE_string("algorithm", "pq_dst", "Sparsity algorithm.")
flags.DEFINE_string("scope", "layer", "PQ scope: layer, neuron or global.")
flags.DEFINE_integer("repeats", 10, "Timed calls per step (median).")
flags.DEFINE_integer("num_classes", 10, "Output classes.")

# Input shape per model: what it is trained on.
INPUT_SHAPES = {"mlp": (8, 8, 1), "convnet": (28, 28, 1),
                "convnet6x2": (32, 32, 3), "resnet19": (32, 32, 3),
                "vggsnn": (48, 48, 2)}


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


def run(model_name: str, batch_size: int, time_steps: int, algorithm: str,
        scope: str, repeats: int, num_classes: int = 10) -> dict:
  """Builds and times the steps; returns the figures of the JSON line."""
  config = default.get_config()
  config.model.name = model_name
  config.time_steps = time_steps
  config.sparsity.algorithm = algorithm
  config.sparsity.scope = scope
  total_steps = 1000
  model = train.create_model(config, num_classes)
  algo = algorithms.create(config.sparsity, total_steps=total_steps)
  tx = optimizers.create_optimizer(config.optimizer, steps_per_epoch=100,
                                   total_steps=total_steps)
  shape = INPUT_SHAPES[model_name]
  state = train.initial_state(config, model, algo, tx, shape)
  rng = np.random.default_rng(0)
  batch = {"input": rng.normal(size=(batch_size,) + shape).astype(np.float32),
           "label": rng.integers(0, num_classes, batch_size).astype(np.int32)}
  batch = jax.device_put(batch)
  train_step, eval_step = steps.make_steps(loss="ce", time_steps=time_steps)

  start = time.perf_counter()
  compiled_train = train_step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  flop_per_sample = _flops(compiled_train) / batch_size
  state, _ = compiled_train(state, batch)  # warm-up
  eval_step(state, batch)
  grads = None
  if algo.needs_grads:
    grads = jax.jit(lambda s, b: steps.loss_and_grads(
        s, b, loss_fn=steps.losses.mean_cross_entropy, rng=s.rng,
        time_steps=time_steps)[1])(state, batch)
  state, _ = algo.rewire(state, grads)

  holder = {"state": state}

  def one_train():
    holder["state"], out = compiled_train(holder["state"], batch)
    return out

  train_s = _median_seconds(one_train, repeats)
  eval_s = _median_seconds(lambda: eval_step(holder["state"], batch), repeats)

  def one_rewire():
    holder["state"], report = algo.rewire(holder["state"], grads)
    return holder["state"].masks

  rewire_s = (_median_seconds(one_rewire, repeats)
              if algo.has_rewire_event else 0.0)
  return {
      "model": model_name, "batch_size": batch_size, "time_steps": time_steps,
      "algorithm": algorithm, "scope": scope,
      "train_samples_per_s": batch_size / train_s,
      "eval_samples_per_s": batch_size / eval_s,
      "train_step_s": train_s, "eval_step_s": eval_s,
      "rewire_step_s": rewire_s, "compile_s": compile_s,
      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "model_gflop_per_sample": flop_per_sample / 1e9,
      "achieved_gflops": flop_per_sample * batch_size / train_s / 1e9,
      "devices": f"{jax.device_count()}x {jax.devices()[0].platform}",
  }


def main(argv):
  del argv
  out = run(FLAGS.model, FLAGS.batch_size, FLAGS.time_steps, FLAGS.algorithm,
            FLAGS.scope, FLAGS.repeats, FLAGS.num_classes)
  width = max(map(len, out))
  for key, value in out.items():
    shown = f"{value:.4g}" if isinstance(value, float) else value
    print(f"{key.ljust(width)}  {shown}")
  print(json.dumps(out))


if __name__ == "__main__":
  app.run(main)
