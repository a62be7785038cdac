"""Orbax checkpoints of the whole :class:`TrainState`, written atomically.

A checkpoint holds every pytree field of the state (step, params, batch
stats, masks, optimizer state, sparsity state and the RNG key, stored as its
raw key data) plus a small JSON ``meta`` dict that the trainer uses to resume
(iterations done, the best accuracy so far, ...). The data position is the
step itself: the input pipeline restarts at ``state.step``.

Orbax writes each checkpoint to a temporary directory and renames it when
complete, so an interrupted save never leaves a half-written checkpoint
behind; ``max_to_keep`` bounds the disk used.
"""

from __future__ import annotations

import dataclasses

import os
from typing import Any

import jax
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


class Checkpointer:
  """Saves and restores ``(TrainState, meta)`` under ``directory``.

  Args:
    directory: where the numbered step directories live (created if needed).
    max_to_keep: how many of the newest checkpoints to keep.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True))

  def latest_step(self) -> int | None:
    """The newest complete checkpoint's step, or ``None``."""
    return self._manager.latest_step()

  def save(self, state: TrainState, meta: dict[str, Any]) -> None:
    """Writes a checkpoint at ``state.step`` and waits until it is complete."""
    step = int(state.step)
    if step in self._manager.all_steps():
      self._manager.delete(step)  # Re-saving a step replaces it.
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_to_tree(state)),
        meta=ocp.args.JsonSave(meta)))
    self._manager.wait_until_finished()

  def restore(self, template: TrainState, step: int | None = None
              ) -> tuple[TrainState, dict[str, Any]] | None:
    """Restores the checkpoint at ``step`` (default: latest) into ``template``.

    ``template`` supplies the structure, shapes and static fields (model,
    optimizer). Returns ``None`` when there is no checkpoint. Raises a
    ``RuntimeError`` naming the directory when a checkpoint cannot be read.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                            _to_tree(template))
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract),
          meta=ocp.args.JsonRestore()))
    except Exception as e:  # Orbax raises many types; name the path.
      raise RuntimeError(
          f"Cannot restore the checkpoint at step {step} in "
          f"{self.directory}: {type(e).__name__}: {e}. It is corrupt or was "
          "written by a different model/optimizer/sparsity config. Delete "
          f"{os.path.join(self.directory, str(step))} to resume from an "
          "older checkpoint, or use a new workdir.") from e
    return _from_tree(template, dict(restored["state"])), dict(restored["meta"])

  def close(self) -> None:
    self._manager.close()
