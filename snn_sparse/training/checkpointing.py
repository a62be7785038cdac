"""Orbax checkpoints of the whole :class:`TrainState`, written atomically and
verified on restore.

A checkpoint holds every pytree field of the state (step, params, batch
stats, masks, optimizer state, sparsity state and the RNG key, stored as its
raw key data) plus a small JSON ``meta`` dict that the trainer uses to resume
(iterations done, the best accuracy so far, ...). The data position is the
step itself: the input pipeline restarts at ``state.step``.

Integrity, in the order things happen:

- Orbax writes each checkpoint to a temporary directory and renames it when
  complete, so an interrupted save never leaves a half-written checkpoint.
  Temporary directories left by a crash (a full disk, a kill) are removed
  when the next run opens the directory.
- Once a checkpoint is complete, the SHA-256 of each of its files goes into
  its ``checksums.json``. Only then are checkpoints beyond ``max_to_keep``
  deleted, oldest first: the newest verified checkpoint is never deleted
  before a newer one is verified.
- On restore the checksums are checked. A checkpoint whose bytes changed, or
  that cannot be read, is moved aside (never deleted) to
  ``<directory>.corrupt/``, with a warning naming it, and the previous one
  is tried. Only when no readable checkpoint is left does restoring fail.
  An intact checkpoint that does not fit the template (another model or
  optimizer) is refused, not moved.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import hashlib
import json
import os
import shutil
import time
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

from snn_sparse.training.train_state import TrainState


def _to_tree(state: TrainState) -> dict[str, Any]:
  return {
      "step": state.step,
      "params": state.params,
      "batch_stats": state.batch_stats,
      "sparsity": {f.name: getattr(state.sparsity, f.name)
                   for f in dataclasses.fields(state.sparsity)},
      "opt_state": state.opt_state,
      "rng": jax.random.key_data(state.rng),
  }


def _from_tree(template: TrainState, tree: dict[str, Any]) -> TrainState:
  rng = jax.random.wrap_key_data(tree.pop("rng"),
                                 impl=jax.random.key_impl(template.rng))
  sparse = template.sparsity.replace(**tree.pop("sparsity"))
  return template.replace(rng=rng, sparsity=sparse, **tree)


CHECKSUMS = "checksums.json"


def _sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


def _files(step_dir: str) -> list[str]:
  """The files of a checkpoint, relative to its directory, sorted."""
  return sorted(os.path.relpath(os.path.join(root, name), step_dir)
                for root, _, names in os.walk(step_dir) for name in names
                if name != CHECKSUMS or root != step_dir)


def write_checksums(step_dir: str) -> None:
  """Records the SHA-256 of every file of a complete checkpoint."""
  sums = {f: _sha256(os.path.join(step_dir, f)) for f in _files(step_dir)}
  tmp = os.path.join(step_dir, CHECKSUMS + ".tmp")
  with open(tmp, "w") as f:
    json.dump(sums, f, indent=0, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, os.path.join(step_dir, CHECKSUMS))


def verify_checksums(step_dir: str) -> str | None:
  """``None`` if the checkpoint's files match its checksums, else why not.

  A checkpoint without ``checksums.json`` (written before checksums were
  recorded, or by a run killed between the two) is accepted unverified; a
  damaged one still fails to restore, and is then set aside as well.
  """
  path = os.path.join(step_dir, CHECKSUMS)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      sums = json.load(f)
  except (OSError, ValueError):
    return f"{CHECKSUMS} is unreadable"
  files = _files(step_dir)
  missing = sorted(set(sums) - set(files))
  if missing:
    return f"{missing[0]} is missing"
  for name in files:
    if name not in sums:
      return f"{name} was not in the checkpoint"
    if _sha256(os.path.join(step_dir, name)) != sums[name]:
      return f"{name} has changed"
  return None


def _disk_full(error: BaseException | None) -> bool:
  """Whether ``error`` or one of its causes is "no space left on device"."""
  while error is not None:
    if getattr(error, "errno", None) == errno.ENOSPC or (
        "No space left on device" in str(error)):
      return True
    error = error.__cause__ or error.__context__
  return False


def _barrier(name: str) -> None:
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


class Checkpointer:
  """Saves and restores ``(TrainState, meta)`` under ``directory``.

  Args:
    directory: where the numbered step directories live (created if needed).
    max_to_keep: how many of the newest checkpoints to keep.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    if isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or (
        max_to_keep < 1):
      raise ValueError(
          f"config.max_to_keep: {max_to_keep!r}, but at least the newest "
          "checkpoint must be kept to resume from; use 1 or more (2, the "
          "default, keeps the one before it too).")
    self.directory = os.path.abspath(directory)
    self.max_to_keep = max_to_keep
    if jax.process_index() == 0:
      for tmp in glob.glob(os.path.join(self.directory,
                                        "*.orbax-checkpoint-tmp*")):
        logging.warning("Removing %s, an incomplete checkpoint left by an "
                        "interrupted save.", tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    _barrier("snn_sparse_checkpoint_cleanup")
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    # Retention is ours (see save), so that nothing is deleted too early.
    return ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=None, create=True))

  def latest_step(self) -> int | None:
    """The newest complete checkpoint's step, or ``None``."""
    return self._manager.latest_step()

  def save(self, state: TrainState, meta: dict[str, Any]) -> None:
    """Writes a checkpoint at ``state.step``, waits until it is complete,
    records its checksums, then deletes those beyond ``max_to_keep``.

    Saving a step again replaces its checkpoint (the trainer never does).
    """
    step = int(state.step)
    if step in self._manager.all_steps():
      self._manager.delete(step)
    try:
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(_to_tree(state)),
          meta=ocp.args.JsonSave(meta)))
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      if not _disk_full(e):
        raise
      raise OSError(
          "The disk is full: no space left on device while saving the "
          f"checkpoint of step {step} in {self.directory}. The previous "
          "checkpoint is intact: free some space there and run the same "
          "command again to resume.") from None
    if jax.process_index() == 0:
      write_checksums(self._step_dir(step))
    _barrier("snn_sparse_checkpoint_saved")
    for old in sorted(self._manager.all_steps())[:-self.max_to_keep]:
      self._manager.delete(old)

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _set_aside(self, step: int, why: str) -> None:
    """Moves a damaged checkpoint to ``<directory>.corrupt/`` and warns."""
    target = os.path.join(f"{self.directory}.corrupt",
                          f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    logging.warning("The checkpoint %s is damaged (%s): moved to %s; "
                    "resuming from the one before it.",
                    self._step_dir(step), why, target)
    if jax.process_index() == 0:
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.move(self._step_dir(step), target)
    _barrier(f"snn_sparse_checkpoint_aside_{step}")
    self._manager.close()
    self._manager = self._open()

  def restore(self, template: TrainState, step: int | None = None
              ) -> tuple[TrainState, dict[str, Any]] | None:
    """Restores the newest verified checkpoint (or the one at ``step``).

    ``template`` supplies the structure, shapes, shardings and static fields
    (model, optimizer). Damaged checkpoints are set aside (module
    docstring). Returns ``None`` when there is no checkpoint; raises a
    ``RuntimeError`` when there were checkpoints but none can be restored.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                            _to_tree(template))
    set_aside = []
    while True:
      steps = self._manager.all_steps()
      if step is not None and step not in steps:
        break
      current = step if step is not None else self._manager.latest_step()
      if current is None:
        break
      step_dir = self._step_dir(current)
      why = verify_checksums(step_dir)
      if why is None:
        try:
          restored = self._manager.restore(current, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract),
              meta=ocp.args.JsonRestore()))
          return (_from_tree(template, dict(restored["state"])),
                  dict(restored["meta"]))
        except Exception as e:  # pylint: disable=broad-except
          # Orbax raises many types, with pages of detail: keep a line.
          why = f"it cannot be read: {type(e).__name__}: " + (
              str(e).strip().splitlines() or [""])[0][:200]
          if os.path.exists(os.path.join(step_dir, CHECKSUMS)):
            # Its bytes are as written: not damage, but another state.
            raise RuntimeError(
                f"The checkpoint {step_dir} is intact but does not fit this "
                f"run ({why}). It was written by a different model, "
                "optimizer or sparsity config: use a new --workdir.") from None
      self._set_aside(current, why)
      set_aside.append(current)
      if step is not None:
        break
    if set_aside:
      raise RuntimeError(
          f"No readable checkpoint is left in {self.directory}: step(s) "
          f"{', '.join(map(str, set_aside))} were damaged and were moved to "
          f"{self.directory}.corrupt/. Start over with a new --workdir, or "
          "delete this one.")
    return None

  def close(self) -> None:
    self._manager.close()
