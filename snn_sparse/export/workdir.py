"""The trained network of a workdir: its model, params, masks and statistics.

``restore(workdir, checkpoint="best"|"latest")`` reads the workdir's
``config.json``, rebuilds the run's model and train state exactly as the
trainer does, and restores the ``best/`` (the best iteration, chosen on
validation) or ``checkpoints/`` (the latest) orbax checkpoint into it.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import ml_collections

from snn_sparse import sparsity as sparsity_lib
from snn_sparse.data import pipeline

CHECKPOINTS = {"best": "best", "latest": "checkpoints"}


class Restored(NamedTuple):
  """A workdir's trained network.

  Attributes:
    config: the run's config (``config.json``).
    model: the Flax model the run trained (``train.model_for_dataset``).
    info: the dataset's ``pipeline.DatasetInfo``.
    params, masks, batch_stats: the checkpoint's trees (``masks``: a bool
      array per masked kernel, ``None`` elsewhere; ``None`` when dense).
    step: the checkpoint's optimizer step.
    meta: the checkpoint's JSON metadata (``best/``: the iteration and its
      summary row).
    checkpoint: ``"best"`` or ``"latest"``.
  """

  config: ml_collections.ConfigDict
  model: Any
  info: Any
  params: Any
  masks: Any
  batch_stats: Any
  step: int
  meta: dict
  checkpoint: str


def _tuples(value):
  """JSON lists back to tuples (hashable Flax module fields)."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config from ``workdir/config.json``."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} does not exist: --workdir must be the directory of a "
        "training run (python -m experiments.main --config ... --workdir "
        "DIR).")
  with open(path) as f:
    return ml_collections.ConfigDict(_tuples(json.load(f)))


def restore(workdir: str, checkpoint: str = "best") -> Restored:
  """Restores the ``checkpoint`` (``"best"`` or ``"latest"``) of ``workdir``.

  Raises a ``FileNotFoundError`` naming the directory when the workdir has
  no config or no checkpoint of that kind.
  """
  # The harness is imported here: restoring needs the trainer's own state.
  from snn_sparse.training import checkpointing, train  # pylint: disable=g-import-not-at-top
  if checkpoint not in CHECKPOINTS:
    raise ValueError(f"checkpoint={checkpoint!r}; choose one of "
                     f"{sorted(CHECKPOINTS)}.")
  config = load_config(workdir)
  info = pipeline.dataset_info(config.data.name)
  model = train.model_for_dataset(config, info)
  steps_per_epoch = pipeline.steps_per_epoch(
      config.data.name, config.data.batch_size,
      validation_fraction=config.data.validation_fraction)
  per_iteration = steps_per_epoch * config.epochs_per_iteration
  total = per_iteration * config.num_iterations
  algo = sparsity_lib.from_config(config.sparsity, total_steps=total,
                                  steps_per_iteration=per_iteration)
  tx = train.create_optimizer(config, algo, steps_per_epoch=steps_per_epoch,
                              steps_per_iteration=per_iteration,
                              total_steps=total)
  template = train.initial_state(config, model, algo, tx, info.input_shape)
  directory = os.path.join(workdir, CHECKPOINTS[checkpoint])
  if not os.path.isdir(directory):
    raise FileNotFoundError(
        f"{directory} does not exist: the run has not finished an iteration "
        "yet. Train longer, or pass --checkpoint latest.")
  ckpt = checkpointing.Checkpointer(directory)
  try:
    restored = (ckpt.restore(template) if ckpt.latest_step() is not None
                else None)
  finally:
    ckpt.close()
  if restored is None:
    raise FileNotFoundError(
        f"{directory} holds no checkpoint: the run has not finished an "
        "iteration yet. Train longer, or pass --checkpoint latest.")
  state, meta = restored
  return Restored(config=config, model=model, info=info,
                  params=state.params, masks=state.masks,
                  batch_stats=state.batch_stats, step=int(state.step),
                  meta=meta, checkpoint=checkpoint)


def model_config(restored: Restored) -> dict:
  """What rebuilds the model: ``models.create(d["model"]["name"],
  num_classes=d["num_classes"], **fields)``, plus the input it reads."""
  model = {k: (list(v) if isinstance(v, tuple) else v)
           for k, v in restored.config.model.to_dict().items()}
  return {"model": model, "num_classes": restored.info.num_classes,
          "dataset": restored.config.data.name,
          "input_shape": list(restored.info.input_shape),
          "time_steps": restored.config.time_steps,
          "static_images": not restored.info.frames,
          "checkpoint": restored.checkpoint, "step": restored.step}
