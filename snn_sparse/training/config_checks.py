"""The config's fields, checked before anything is built.

:func:`field_problems` lists every bad field that needs nothing built;
:func:`validate_config`, the trainer's first call, raises the first one.
``snn_sparse.training.preflight`` checks the rest of a run.
"""

from __future__ import annotations

import math
import os
from typing import Iterator

import ml_collections

from snn_sparse import models

from snn_sparse.training import optimizers


def _problem(field: str, message: str) -> str:
  return f"config.{field}: {message}"


DIVERGENCE_ACTIONS = ("stop", "warn", "off")


def _is_number(value) -> bool:
  return (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value))


def field_problems(config: ml_collections.ConfigDict) -> Iterator[str]:
  """Each bad field that can be checked without building anything, as a
  message that names it (``config.a.b: ...``) and says what to do."""
  missing = [f for f in ("seed", "data", "model", "time_steps", "loss",
                         "optimizer", "num_iterations", "epochs_per_iteration",
                         "sparsity", "mesh") if f not in config]
  for field in missing:
    yield _problem(field, "is missing; start from "
                   "experiments/configs/default.py.")
  if missing:
    return
  for field in ("time_steps", "num_iterations", "epochs_per_iteration"):
    value = config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      yield _problem(field, f"must be a positive integer, got {value!r}.")
  for field in ("batch_size", "eval_batch_size"):
    value = config.data[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      yield _problem(f"data.{field}", f"must be >= 1, got {value!r}.")
  fraction = config.data.get("validation_fraction")
  if not _is_number(fraction) or not 0 <= fraction < 1:
    yield _problem(
        "data.validation_fraction",
        f"must be a number in [0, 1), got {fraction!r}: the fraction of the "
        "train split held out to choose the best iteration (0.1), or 0 to "
        "choose it on the test split.")
  if config.loss not in ("ce", "tet"):
    yield _problem("loss", f"unknown {config.loss!r}; choose 'ce' or 'tet'.")
  if "name" not in config.model:
    yield _problem("model.name",
                   f"is missing; choose one of {sorted(models.MODELS)}.")
  log_every = config.log_every_steps
  if isinstance(log_every, bool) or not isinstance(log_every, int) or (
      log_every < 1):
    yield _problem("log_every_steps", f"must be >= 1, got {log_every!r}.")
  elif config.checkpoint_every_steps % log_every:
    yield _problem(
        "checkpoint_every_steps",
        f"{config.checkpoint_every_steps} must be a multiple of "
        f"log_every_steps ({log_every}), so that checkpoints fall on log "
        "lines (0 = only at iteration ends).")
  max_to_keep = config.get("max_to_keep", 2)
  if isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or (
      max_to_keep < 1):
    yield _problem("max_to_keep", f"{max_to_keep!r}, but at least the newest "
                   "checkpoint must be kept to resume from; use 1 or more.")
  try:
    optimizers.validate(config.optimizer)
  except ValueError as e:
    yield str(e)
  tau = config.model.get("tau")
  if tau is not None and not (_is_number(tau) and tau > 1):
    yield _problem("model.tau", f"must be a finite number > 1, got {tau!r}: "
                   "each step the potential leaks 1/tau of its distance to "
                   "rest (SpikingJelly also requires tau > 1); 2.0 is usual.")
  threshold = config.model.get("v_threshold")
  if threshold is not None and not _is_number(threshold):
    yield _problem("model.v_threshold",
                   f"must be a finite number, got {threshold!r}.")
  manual_dir = config.data.get("manual_dir")
  if manual_dir and not os.path.isdir(manual_dir):
    yield _problem("data.manual_dir",
                   f"{manual_dir} does not exist. Give the folder that holds "
                   f"{config.data.name}'s files, or leave it unset to use the "
                   "default sources.")
  divergence = config.get("divergence")
  if divergence is not None:
    if divergence.action not in DIVERGENCE_ACTIONS:
      yield _problem("divergence.action", f"unknown {divergence.action!r}; "
                     f"choose one of {DIVERGENCE_ACTIONS}.")
    if not _is_number(divergence.factor) or not divergence.factor > 1:
      yield _problem("divergence.factor", "must be a number > 1, got "
                     f"{divergence.factor!r}.")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises a ``ValueError`` with the first of :func:`field_problems` (the
  sparsity, model and data fields are checked as the trainer builds them,
  still before the first compilation)."""
  for problem in field_problems(config):
    raise ValueError(problem)
