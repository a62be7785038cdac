"""``--check_config``: every problem of a run, found before it starts.

:func:`run_problems` checks the config's fields, then builds what the
trainer builds before compiling (the model, the sparsity algorithm, the
optimizer, the data's split sizes) and reads what the workdir holds (its
lock, ``config.json``, the newest checkpoint's checksums). It compiles,
trains and writes nothing.
"""

from __future__ import annotations

import json
import os

import ml_collections

from snn_sparse import sparsity
from snn_sparse.data import pipeline, storage
from snn_sparse.training import checkpointing, config_checks, train
from snn_sparse.training import workdir as workdir_lib


def run_problems(config: ml_collections.ConfigDict, workdir: str
                 ) -> list[str]:
  """Every problem found in ``config``, ``workdir`` and the data sources.

  Builds the model, algorithm and optimizer and opens nothing for writing:
  the workdir is only read (its lock, ``config.json`` and the newest
  checkpoint's checksums). An empty list means the run can start.
  """
  out = list(config_checks.field_problems(config))
  if any(p.endswith("is missing; start from experiments/configs/default.py.")
         for p in out):
    return out

  def attempt(fn, *args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except Exception as e:  # pylint: disable=broad-except
      out.append(str(e) if isinstance(e, (ValueError, KeyError, OSError))
                 else f"{type(e).__name__}: {e}")
      return None

  info = attempt(pipeline.dataset_info, config.data.name)
  if info is not None:
    attempt(storage.check_available, config.data.name,
            data_dir=config.data.data_dir, manual_dir=config.data.manual_dir)
    attempt(train.model_for_dataset, config, info)
    steps = None
    if not any(p.startswith("config.data.") for p in out):
      steps = attempt(pipeline.steps_per_epoch, config.data.name,
                      config.data.batch_size,
                      validation_fraction=config.data.validation_fraction)
    if steps:
      per_iteration = steps * config.epochs_per_iteration
      algo = attempt(sparsity.from_config, config.sparsity,
                     total_steps=per_iteration * config.num_iterations,
                     steps_per_iteration=per_iteration)
      if algo is not None:
        attempt(train.create_optimizer, config, algo, steps_per_epoch=steps,
                steps_per_iteration=per_iteration,
                total_steps=per_iteration * config.num_iterations)
  if os.path.exists(workdir):
    in_use = workdir_lib.holder(workdir)
    if in_use:
      out.append(f"Another run is using {workdir} ({in_use}).")
    attempt(workdir_lib.check_same_config, workdir,
            json.loads(config.to_json_best_effort()))
    latest = attempt(_latest_checkpoint, os.path.join(workdir, "checkpoints"))
    if latest is not None:
      why = checkpointing.verify_checksums(latest)
      if why is not None:
        out.append(f"The newest checkpoint, {latest}, is damaged ({why}): "
                   "the run will set it aside and resume from the one "
                   "before it.")
  return out


def _latest_checkpoint(directory: str) -> str | None:
  steps = [int(d) for d in os.listdir(directory)
           if d.isdigit()] if os.path.isdir(directory) else []
  return os.path.join(directory, str(max(steps))) if steps else None
