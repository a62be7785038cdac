"""``train_and_evaluate(config, workdir)``: the two-stage sparse training loop.

The loop (METHOD.md §3), read top to bottom in the phases below::

    masks ~ ERK at the initial density; weights = weights * masks
    for iteration in 1..num_iterations:
      Stage I: epochs_per_iteration epochs of surrogate-gradient BPTT, dense
               gradients on the effective weights, re-mask after each step;
               every rewire_every steps the algorithm's in-iteration event
               (pq_dst: prune and regrow at constant density), except in
               the iteration's last rewire_every steps, so the network
               that is evaluated and net-pruned has trained for at least
               rewire_every steps since its last rewiring
      evaluate on the validation split (held out of the train split,
               config.data.validation_fraction) and on the test split:
               accuracy, loss; on the test split also SOPs, MACs of the
               first layer, energy, firing rates; connectivity, nonzero
               parameters, PQ index (layer scope, and the configured scope);
               keep the best iteration's checkpoint, chosen on validation
      Stage II (all but the last iteration): the algorithm's iteration-end
               event (pq_dst: net prune by the PQ-derived ratio c; its
               grown_survival joins the iteration's summary row)
      checkpoint

Evaluation comes *before* the iteration-end event, so each row of the summary
describes one network: the one trained at that row's density. Iteration 1 is
therefore reported at the initial density (0.5), and the net prune after it
sets the density that iteration 2 trains at.

The best iteration is the argmax of ``val_accuracy`` (the first one on ties);
``best/`` holds its checkpoint. With ``config.data.validation_fraction = 0``
there is no validation split and the selection falls back to the test split;
``summary.json`` says which (``"selection"``).

Workdir: ``config.json``, ``metrics.jsonl``, ``summary.json``,
``checkpoints/`` (latest, orbax, verified on restore), ``best/`` (the best
iteration), ``summary.png`` and ``.lock`` (one run at a time). Running the
same command on the same workdir resumes from the latest checkpoint and ends
exactly where an uninterrupted run would, also after SIGTERM or Ctrl-C,
which save at the next step boundary. Bad config values are refused before
anything compiles; a non-finite loss, gradient or parameter, or a diverging
loss, stops the run naming the step.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snn_sparse import metrics, models
from snn_sparse import sparsity as sparsity_lib
from snn_sparse.data import pipeline
from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity import pq as pq_lib
from snn_sparse.sparsity.layout import UnitLayout
from snn_sparse.training import (checkpointing, distributed, optimizers,
                                 parallel, reporting)
from snn_sparse.training import preemption
from snn_sparse.training.config_checks import validate_config
from snn_sparse.training import workdir as workdir_lib
from snn_sparse.training import steps as steps_lib
from snn_sparse.training.train_state import TrainState

PyTree = Any


# ----------------------------------------------------------------------------
# Config checks
# ----------------------------------------------------------------------------
def _fail(field: str, message: str):
  raise ValueError(f"config.{field}: {message}")


# ----------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------
def create_model(config, num_classes: int, *, static_images: bool = False):
  """The model of ``config.model`` (its ``name`` plus field overrides).

  ``static_images``: the data are images, repeated over the time steps
  (direct encoding), so the model may run its first layer once
  (``repeated_input``, unless ``config.model`` sets it).
  """
  fields = {"repeated_input": static_images,
            **{k: v for k, v in config.model.items() if k != "name"}}
  return models.create(config.model.name, num_classes=num_classes, **fields)


def create_optimizer(config, algo, *, steps_per_epoch: int,
                     steps_per_iteration: int, total_steps: int):
  """The optax optimizer of ``config.optimizer``.

  ``optimizer.restart_each_iteration = None`` takes the algorithm's default
  (``algo.restarts_schedule``: ``sap`` restarts its schedule each iteration).
  """
  restart = config.optimizer.restart_each_iteration
  return optimizers.create_optimizer(
      config.optimizer, steps_per_epoch=steps_per_epoch,
      total_steps=total_steps, steps_per_iteration=steps_per_iteration,
      restart_each_iteration=(algo.restarts_schedule if restart is None
                              else restart))


def model_for_dataset(config, info: pipeline.DatasetInfo):
  """The model of ``config`` for dataset ``info``: images are repeated over
  the time steps (direct encoding), event frames are not."""
  return create_model(config, info.num_classes, static_images=not info.frames)


def initial_state(config, model, algo, tx, input_shape) -> TrainState:
  """Params, batch stats, masks, optimizer and sparsity state at step 0."""
  key = jax.random.key(config.seed)
  init_key, mask_key, state_key = jax.random.split(key, 3)
  x = jnp.zeros((config.time_steps, 1) + tuple(input_shape), jnp.float32)
  variables = jax.jit(lambda k: model.init(
      {"params": k, "dropout": k}, x, train=False))(init_key)
  params = variables["params"]
  state = TrainState.create(
      apply_fn=model.apply, params=params, tx=tx,
      batch_stats=variables.get("batch_stats", {}),
      sparsity=algo.init(params, mask_key), rng=state_key)
  algo.validate(state.params, state.sparsity, state.opt_state)
  return state


def sparsity_summary(state: TrainState, p: float, q: float,
                     scope: str = "layer") -> dict:
  """Connectivity, nonzero parameters and PQ index of a state.

  ``pq_index_per_layer`` is always the layer-scope index of each masked
  kernel. In ``neuron`` scope, ``pq_index_neuron_mean_per_layer`` and
  ``pq_index_neuron_std_per_layer`` add the mean and the spread (standard
  deviation) of the index over each kernel's units that have at least one
  active synapse; in ``global`` scope, ``pq_index_global`` is the one index
  over all masked kernels together.
  """
  stats = jax.device_get(masks_lib.mask_stats(state.params, state.masks))
  out = {
      "connectivity": float(stats["density"]),
      "connectivity_per_layer": {k: float(v["density"])
                                 for k, v in stats["layers"].items()},
      "nonzero_params": int(stats["nonzero"]),
  }
  if state.masks is None or not masks_lib.masked_paths(state.masks):
    return out
  index = jax.device_get(pq_lib.tree_pq_index(state.params, state.masks,
                                              p=p, q=q, scope="layer"))
  out["pq_index_per_layer"] = {k: float(v) for k, v in index.items()}
  if scope == "global":
    index = jax.device_get(pq_lib.tree_pq_index(state.params, state.masks,
                                                p=p, q=q, scope="global"))
    out["pq_index_global"] = float(next(iter(index.values())))
  elif scope == "neuron":
    index = jax.device_get(pq_lib.tree_pq_index(state.params, state.masks,
                                                p=p, q=q, scope="neuron"))
    layout = UnitLayout(state.masks, "neuron")
    active = {k: np.asarray(v).any(axis=1) for k, v in jax.device_get(
        layout.rows(state.masks)).items()}
    units = {k: np.asarray(v)[active[k]] for k, v in index.items()}
    out["pq_index_neuron_mean_per_layer"] = {
        k: float(v.mean()) if v.size else 0.0 for k, v in units.items()}
    out["pq_index_neuron_std_per_layer"] = {
        k: float(v.std()) if v.size else 0.0 for k, v in units.items()}
  return out


def evaluate(state: TrainState, eval_step, config, mesh,
             split: str = "test") -> dict:
  """One pass over ``split`` ("validation" or "test"): accuracy, loss, SOPs,
  MACs, energy (see :func:`snn_sparse.metrics.finalize`)."""
  total = None
  for batch in pipeline.eval_batches(
      config.data.name, split=split,
      validation_fraction=config.data.validation_fraction,
      batch_size=config.data.eval_batch_size // jax.process_count(),
      data_dir=config.data.data_dir, manual_dir=config.data.manual_dir,
      process_index=jax.process_index(), process_count=jax.process_count()):
    batch = parallel.shard_batch(batch, mesh)
    total = metrics.accumulate(total, eval_step(state, batch))
  return metrics.finalize(total)


def _mean_train_metrics(pending: list) -> dict[str, float]:
  """Means over the logged steps; the learning rate of the last one."""
  values = jax.device_get(pending)
  out = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
  if "learning_rate" in out:
    out["learning_rate"] = float(values[-1]["learning_rate"])
  return out


def _checkpoint_note(ckpt) -> str:
  latest = ckpt.latest_step()
  if latest is None:
    return "No checkpoint was written before it."
  return (f"The checkpoints up to step {latest} are in {ckpt.directory}; a "
          "run with a changed config cannot resume them, so start it in a "
          "new --workdir.")


def _check_finite(flags: list[int], last_step: int, names: list[str],
                  config, ckpt) -> None:
  """Raises ``FloatingPointError`` at the first step whose flag tripped.

  ``flags``: the ``"nonfinite"`` flags of the steps up to ``last_step``.
  """
  for k, flag in enumerate(flags):
    if flag >= 0:
      step = last_step - len(flags) + 1 + k
      what = names[flag][0].upper() + names[flag][1:]
      raise FloatingPointError(
          f"{what} is not finite (NaN or Inf) after step {step}. Lower "
          "config.optimizer.learning_rate (now "
          f"{config.optimizer.learning_rate}), or check the data and its "
          f"normalisation. {_checkpoint_note(ckpt)}")


def _check_divergence(loss: float, last_step: int, num_classes: int, config,
                      ckpt, warned: list) -> None:
  """Stops or warns when the logged loss is far above the loss of chance."""
  divergence = config.get("divergence")
  if divergence is None or divergence.action == "off":
    return
  chance = math.log(num_classes)
  if loss <= divergence.factor * chance:
    return
  message = (f"The training loss averaged {loss:.4g} over the log interval "
             f"ending at step {last_step}, more than "
             f"config.divergence.factor = {divergence.factor:g} times the "
             f"loss of chance (ln {num_classes} = {chance:.3f}): training has "
             "diverged. Lower config.optimizer.learning_rate (now "
             f"{config.optimizer.learning_rate}), or set "
             "config.divergence.action='warn' to go on.")
  if divergence.action == "stop":
    raise FloatingPointError(f"{message} {_checkpoint_note(ckpt)}")
  if not warned:
    logging.warning(message)
    warned.append(last_step)


# ----------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_steps: int | None = None) -> dict:
  """Trains and evaluates; returns the summary written to ``summary.json``.

  Args:
    config: see ``experiments/configs/default.py`` for every field.
    workdir: output directory; if it holds a checkpoint, the run resumes.
    stop_after_steps: stop (after checkpointing) once this many steps have
      run in this call, as a preemption would; for tests.
  """
  validate_config(config)
  if distributed.wanted(config.mesh):
    distributed.initialize(config.mesh)
    distributed.check_agreement(json.loads(config.to_json_best_effort()))
  with (workdir_lib.locked(workdir, enabled=jax.process_index() == 0),
        preemption.StopOnSignal() as signals):
    summary = _train_and_evaluate(config, workdir, stop_after_steps, signals)
  distributed.finish()  # The other processes stop watching this one.
  return summary


def _train_and_evaluate(config, workdir: str, stop_after_steps,
                        signals: preemption.StopOnSignal) -> dict:
  """The run itself, with the workdir locked (see ``train_and_evaluate``)."""
  # ---- Setup -----------------------------------------------------------------
  mesh = parallel.create_mesh(config.mesh.num_devices)
  parallel.check_batch_size("data.batch_size", config.data.batch_size, mesh)
  parallel.check_batch_size("data.eval_batch_size",
                            config.data.eval_batch_size, mesh)
  is_main = jax.process_index() == 0
  distributed.watch(config.mesh.get("heartbeat_timeout_s", 100), workdir)
  info = pipeline.dataset_info(config.data.name)
  if info.frames and info.frames != config.time_steps:
    _fail("time_steps", f"{config.time_steps}, but {config.data.name} holds "
          f"{info.frames} frames per example; set --config.time_steps="
          f"{info.frames}.")
  validation_fraction = config.data.validation_fraction
  steps_per_epoch = pipeline.steps_per_epoch(
      config.data.name, config.data.batch_size,
      validation_fraction=validation_fraction)
  steps_per_iteration = steps_per_epoch * config.epochs_per_iteration
  total_steps = steps_per_iteration * config.num_iterations

  model = model_for_dataset(config, info)
  algo = sparsity_lib.from_config(config.sparsity, total_steps=total_steps,
                                  steps_per_iteration=steps_per_iteration)
  tx = create_optimizer(config, algo, steps_per_epoch=steps_per_epoch,
                        steps_per_iteration=steps_per_iteration,
                        total_steps=total_steps)
  ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"),
                                    max_to_keep=config.max_to_keep)
  if ckpt.latest_step() is not None:
    workdir_lib.check_same_config(workdir,
                                  json.loads(config.to_json_best_effort()))
  # Every check above runs before the first compilation, below.
  state = parallel.replicate(
      initial_state(config, model, algo, tx, info.input_shape), mesh)

  # ---- Resume ----------------------------------------------------------------
  if is_main:
    reporting.write_json_atomic(os.path.join(workdir, "config.json"),
                                json.loads(config.to_json_best_effort()))
  best_ckpt = checkpointing.Checkpointer(os.path.join(workdir, "best"),
                                         max_to_keep=1)
  log = reporting.MetricsLog(os.path.join(workdir, "metrics.jsonl"), is_main,
                             os.path.join(workdir, "tensorboard"))
  meta = {"iterations_done": 0, "rows": [], "best_iteration": None}
  pending = []  # The train metrics of the steps since the last log line.
  restored = ckpt.restore(state)
  if restored is not None:
    state, meta = restored
    # A run stopped between log lines saved them, so that it averages all.
    pending = _from_json(meta.pop("pending", []))
    logging.info("Resumed from step %d in %s.", int(state.step), workdir)
  log.truncate_after(int(state.step))
  step = int(state.step)

  # ---- Steps -----------------------------------------------------------------
  steps = steps_lib.make_steps(algo, loss=config.loss,
                               time_steps=config.time_steps, mesh=mesh)
  batches = pipeline.train_batches(
      config.data.name,
      batch_size=config.data.batch_size // jax.process_count(),
      seed=config.seed, start_step=step, data_dir=config.data.data_dir,
      manual_dir=config.data.manual_dir, augment=config.data.augment,
      validation_fraction=validation_fraction,
      process_index=jax.process_index(), process_count=jax.process_count())
  progress = reporting.Progress(total_steps, step, config.data.batch_size,
                                enabled=is_main)
  run_start_step = step
  nonfinite_names = steps_lib.nonfinite_names(state.params)
  warned = []  # Divergence is warned about once.

  # ---- Iterations ------------------------------------------------------------
  for iteration in range(meta["iterations_done"] + 1,
                         config.num_iterations + 1):
    end_step = iteration * steps_per_iteration
    # Stage I: training, with the in-iteration rewiring events.
    while step < end_step:
      batch = parallel.shard_batch(next(batches), mesh)
      rewires = algo.is_rewire_step(step + 1)
      grads = None
      if rewires and steps.train_with_grads:
        # Growth by gradient ranks this step's dense gradients.
        state, train_metrics, grads = steps.train_with_grads(state, batch)
      else:
        state, train_metrics = steps.train(state, batch)
      step += 1
      pending.append(train_metrics)
      if rewires:
        state, report, fingerprint = steps.rewire(state, grads)
        log.write("rewire", step=step, iteration=iteration,
                  mask_fingerprint=int(fingerprint),
                  **sparsity_lib.flatten_report(jax.device_get(report)))
      at_log = step % config.log_every_steps == 0 or step == end_step
      if at_log:
        flags = jax.device_get([m.pop("nonfinite") for m in pending])
        _check_finite([int(f) for f in flags], step, nonfinite_names,
                      config, ckpt)
        values = _mean_train_metrics(pending)
        pending = []
        _check_divergence(values["loss"], step, info.num_classes, config,
                          ckpt, warned)
        rate = progress.update(step, f"[iteration {iteration}] ", values)
        log.write("train", step=step, iteration=iteration, samples_per_s=rate,
                  **values)
      if (config.checkpoint_every_steps and step < end_step and
          step % config.checkpoint_every_steps == 0):
        ckpt.save(state, meta)
      stopping = signals.should_stop(at_log)
      if step < end_step and (stopping or stop_after_steps and (
          step - run_start_step >= stop_after_steps)):
        ckpt.save(state, {**meta, "pending": _to_json(pending)})
        return _stop(stopping, signals, step, ckpt, meta)

    # Evaluation of the network trained in this iteration.
    start = time.perf_counter()
    val = (evaluate(state, steps.evaluate, config, mesh, "validation")
           if validation_fraction else None)
    result = evaluate(state, steps.evaluate, config, mesh, "test")
    row = {"iteration": iteration, "step": step,
           "epoch": step // steps_per_epoch,
           "val_accuracy": None if val is None else val["accuracy"],
           "val_loss": None if val is None else val["loss"],
           "test_accuracy": result["accuracy"], "test_loss": result["loss"],
           **sparsity_summary(state, config.sparsity.p, config.sparsity.q,
                              config.sparsity.scope),
           "sops": result["sops"], "macs_first_layer": result["macs"],
           "energy_uj": result["energy_uj"],
           "sops_per_layer": result["sops_per_layer"],
           "firing_rate_per_layer": result["firing_rate"],
           "eval_seconds": time.perf_counter() - start}
    log.write("eval", **row)
    chosen_on = "val_accuracy" if validation_fraction else "test_accuracy"
    best = meta["best_iteration"]
    if best is None or row[chosen_on] > meta["rows"][best - 1][chosen_on]:
      meta["best_iteration"] = iteration
      best_ckpt.save(state, {"iteration": iteration, "row": row})
    meta["rows"].append(row)
    logging.info("Iteration %d: val accuracy %s, test accuracy %.4f, "
                 "connectivity %.4f, SOPs %.4g", iteration,
                 "-" if val is None else f"{row['val_accuracy']:.4f}",
                 row["test_accuracy"], row["connectivity"], row["sops"])

    # Stage II: the iteration-end event (not after the last iteration).
    if iteration < config.num_iterations:
      # Iteration-end events rank weights only: no gradients needed.
      state, report, fingerprint = steps.end_iteration(state)
      flat = sparsity_lib.flatten_report(jax.device_get(report))
      log.write("iteration_end", step=step, iteration=iteration,
                mask_fingerprint=int(fingerprint), **flat)
      if "grown_survival" in report:  # a net prune (None where undefined)
        row["grown_survival"] = flat["total/grown_survival"]
        row["grown_survival_per_layer"] = {
            k: flat[f"grown_survival/{k}"] for k in report["grown_survival"]}
    meta["iterations_done"] = iteration
    ckpt.save(state, meta)
    progress.restart(step)
    stopping = signals.should_stop(True)
    if iteration < config.num_iterations and (stopping or stop_after_steps and (
        step - run_start_step >= stop_after_steps)):
      return _stop(stopping, signals, step, ckpt, meta)

  # ---- Summary ---------------------------------------------------------------
  summary = write_summary(workdir, config, meta) if is_main else meta
  ckpt.close()
  best_ckpt.close()
  return summary


def _to_json(pending: list[dict]) -> list[dict]:
  """Per-step train metrics as JSON: ``{name: [value, dtype]}``."""
  return [{k: [v.item(), str(v.dtype)] for k, v in m.items()}
          for m in jax.device_get(pending)]


def _from_json(pending: list[dict]) -> list[dict]:
  """The inverse of :func:`_to_json`, value and dtype exact."""
  return [{k: np.asarray(v, dtype) for k, (v, dtype) in m.items()}
          for m in pending]


def _stop(signalled: bool, signals: preemption.StopOnSignal, step: int,
          ckpt, meta: dict) -> dict:
  """Ends a run early, its checkpoint saved: raises ``Interrupted`` on a
  signal, else returns ``meta`` (``stop_after_steps``)."""
  ckpt.close()
  if signalled:
    raise preemption.Interrupted(
        f"Stopped by {signals.received or 'a signal to another process'} "
        f"after step {step}; the checkpoint is in {ckpt.directory}. Run the "
        "same command again to resume.")
  return meta


def write_summary(workdir: str, config, meta: dict) -> dict:
  """Writes ``summary.json`` (and ``summary.png`` with matplotlib)."""
  best = meta["best_iteration"]
  on_validation = bool(config.data.validation_fraction)
  summary = {
      "dataset": config.data.name, "model": config.model.name,
      "algorithm": config.sparsity.algorithm,
      "scope": config.sparsity.get("scope"),
      "selection": "validation" if on_validation else "test",
      "validation_examples": pipeline.split_sizes(
          config.data.name, config.data.validation_fraction)["validation"],
      "best_iteration": best,
      "best": meta["rows"][best - 1] if best else None,
      "iterations": [dict(r, best=r["iteration"] == best)
                     for r in meta["rows"]],
  }
  reporting.write_json_atomic(os.path.join(workdir, "summary.json"), summary)
  print(f"Best iteration {best}, chosen on the "
        f"{summary['selection']} split.")
  print(reporting.table(summary["iterations"], [
      ("iter", "iteration", "d"), ("val acc", "val_accuracy", ".4f"),
      ("test acc", "test_accuracy", ".4f"),
      ("connectivity", "connectivity", ".4f"),
      ("grown kept", "grown_survival", ".3f"),
      ("nonzero", "nonzero_params", ",d"), ("SOPs", "sops", ".4g"),
      ("MACs", "macs_first_layer", ".4g"), ("energy uJ", "energy_uj", ".4g")]))
  try:
    from snn_sparse.training import plotting  # pylint: disable=g-import-not-at-top
    plotting.plot_summary(summary, os.path.join(workdir, "summary.png"))
  except ImportError:
    logging.info("matplotlib is not installed: no summary.png "
                 "(pip install 'snn-sparse[viz]').")
  return summary
