"""The jitted steps of a run, built in one place: :func:`make_steps`.

A batch is a dict with ``"input"`` and ``"label"`` ``[B]`` (int), batch-major
as data pipelines produce it (so the batch axis is always axis 0, the one
that data parallelism shards). The input is either a static image batch
``[B, H, W, C]``, which is direct-encoded (repeated over ``time_steps``), or
event frames ``[B, T, H, W, C]``, which are transposed to the models'
time-major ``[T, B, H, W, C]`` inside the jitted step.

The loss is differentiated with respect to the effective weights
``params * masks`` (dense gradient; see ``snn_sparse.training.train_state``).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from snn_sparse import layers, losses, metrics
from snn_sparse.training import optimizers, parallel
from snn_sparse.training import train_state as state_lib
from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.training.train_state import TrainState


def encode(inputs: jax.Array, time_steps: int) -> jax.Array:
  """Model input ``[T, B, H, W, C]`` from a batch's ``"input"``.

  Images ``[B, H, W, C]`` are repeated ``time_steps`` times (direct
  encoding); event frames ``[B, T, H, W, C]`` are transposed to time-major
  and must have ``T == time_steps``.
  """
  if inputs.ndim == 5:
    if inputs.shape[1] != time_steps:
      raise ValueError(
          f"Event frames [B, T, H, W, C] have T={inputs.shape[1]}, but "
          f"config.time_steps is {time_steps}; make them equal.")
    return jnp.swapaxes(inputs, 0, 1)
  if inputs.ndim != 4:
    raise ValueError(
        "batch['input'] must be images [B, H, W, C] or event frames "
        f"[B, T, H, W, C]; got shape {tuple(inputs.shape)}.")
  return layers.repeat_time(inputs, time_steps)


def _forward(state: TrainState, params, batch, *, train: bool, rng,
             time_steps: int):
  """Returns ``(logits, new_batch_stats, intermediates)``."""
  variables = {"params": params, "batch_stats": state.batch_stats}
  x = encode(batch["input"], time_steps)
  if train:
    logits, updates = state.apply_fn(variables, x, train=True,
                                     mutable=["batch_stats"],
                                     rngs={"dropout": rng})
    return logits, updates.get("batch_stats", state.batch_stats), {}
  logits, updates = state.apply_fn(variables, x, train=False,
                                   mutable=["intermediates"])
  return logits, state.batch_stats, updates.get("intermediates", {})


def loss_and_grads(state: TrainState, batch, *, loss_fn: Callable, rng,
                   time_steps: int):
  """Loss, dense gradient w.r.t. ``params * masks``, logits, new batch stats."""
  def objective(effective):
    logits, stats, _ = _forward(state, effective, batch, train=True, rng=rng,
                                time_steps=time_steps)
    return loss_fn(logits, batch["label"]), (logits, stats)

  (loss, (logits, stats)), grads = jax.value_and_grad(
      objective, has_aux=True)(state.effective_params())
  return loss, grads, logits, stats


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Top-1 accuracy of the time-averaged logits ``[T, B, C]`` vs ``[B]``."""
  return jnp.mean(jnp.argmax(logits.mean(0), -1) == labels)


def first_nonfinite(loss: jax.Array, grads, params) -> jax.Array:
  """Where a train step first went non-finite: an int32 scalar.

  -1 when the loss, every gradient and every parameter are finite; else the
  index, in :func:`nonfinite_names`, of the first non-finite one.
  """
  finite = jnp.stack([jnp.isfinite(loss).all()] + [
      jnp.isfinite(x).all() for x in jax.tree.leaves(grads)
      + jax.tree.leaves(params)])
  return jnp.where(finite.all(), -1, jnp.argmin(finite)).astype(jnp.int32)


def nonfinite_names(params) -> list[str]:
  """The names of :func:`first_nonfinite`'s indices, for ``params``."""
  paths = ["/".join(str(getattr(k, "key", k)) for k in path)
           for path, _ in jax.tree_util.tree_leaves_with_path(params)]
  return (["the loss"] + [f"the gradient of {p}" for p in paths]
          + [f"the parameter {p}" for p in paths])


def train_step(state: TrainState, batch, *, loss: str = "ce",
               time_steps: int = 1, return_grads: bool = False):
  """One optimizer step. Returns ``(state, {"loss", "accuracy", "nonfinite"})``.

  ``"nonfinite"`` is :func:`first_nonfinite` of this step (-1: all finite),
  an on-device flag that the trainer reads once per log interval.

  With an optimizer of :func:`snn_sparse.training.optimizers.create_optimizer` the
  metrics also hold ``"learning_rate"``, the one this step used. With
  ``return_grads`` it returns ``(state, metrics, grads)``: the dense
  gradients of this step (w.r.t. the effective weights, before the update),
  which growth by gradient ranks.
  """
  rng, step_rng = jax.random.split(state.rng)
  loss_value, grads, logits, stats = loss_and_grads(
      state, batch, loss_fn=losses.get_loss(loss), rng=step_rng,
      time_steps=time_steps)
  state = state.apply_dense_gradients(grads).replace(batch_stats=stats,
                                                     rng=rng)
  out = {"loss": loss_value, "accuracy": accuracy(logits, batch["label"]),
         "nonfinite": first_nonfinite(loss_value, grads, state.params)}
  lr = optimizers.learning_rate(state.opt_state)
  if lr is not None:
    out["learning_rate"] = lr
  if return_grads:
    return state, out, grads
  return state, out


def eval_step(state: TrainState, batch, *, loss: str = "ce",
              time_steps: int = 1):
  """Sums over the real examples of a batch, with running BatchNorm stats.

  ``batch["mask"]`` ``[B]`` (optional) marks real examples (1) and padding
  (0). Returns ``{"count", "correct", "loss"}`` sums plus the per-layer
  ``"sops"``, ``"macs"`` and ``"firing_rate"`` sums of
  ``metrics.batch_sums``; accumulate with ``metrics.accumulate`` and divide
  with ``metrics.finalize``.
  """
  labels = batch["label"]
  weights = batch.get("mask", jnp.ones(labels.shape, jnp.float32))
  logits, _, intermediates = _forward(
      state, state.effective_params(), batch, train=False, rng=None,
      time_steps=time_steps)
  count = jnp.sum(weights)
  correct = jnp.argmax(logits.mean(0), -1) == labels
  return {
      "count": count,
      "correct": jnp.sum(correct * weights),
      "loss": losses.get_loss(loss)(logits, labels, weights) * count,
      **metrics.batch_sums(intermediates, logits.shape[0], weights),
  }


class Steps(NamedTuple):
  """The jitted steps of a run. Steps that return a state donate theirs.

  Attributes:
    train: ``(state, batch) -> (state, metrics)``.
    train_with_grads: ``(state, batch) -> (state, metrics, grads)``, for a
      step after which an event grows by gradient; ``None`` unless the
      algorithm needs gradients.
    evaluate: ``(state, batch) -> sums`` (:func:`eval_step`).
    rewire: ``(state, grads) -> (state, report, mask_fingerprint)``, the
      algorithm's in-iteration event (``grads`` may be ``None``).
    end_iteration: ``(state) -> (state, report, mask_fingerprint)``.
  """

  train: Callable
  train_with_grads: Callable | None
  evaluate: Callable
  rewire: Callable
  end_iteration: Callable


def make_steps(algo, *, loss: str = "ce", time_steps: int = 1,
               mesh=None) -> Steps:
  """Every jitted step of a run of ``algo``: the trainer's, the benchmark's.

  With a ``mesh`` the state is replicated and the batch sharded along its
  ``"data"`` axis; without one the steps run on the default device. With
  ``algo=None`` (a fixed mask or none) ``rewire`` and ``end_iteration`` are
  ``None``.
  """
  losses.get_loss(loss)  # Validate the name early.
  kw = dict(loss=loss, time_steps=time_steps)
  if mesh is None:
    state_sh = batch_sh = None
  else:
    state_sh = parallel.replicated(mesh)
    batch_sh = parallel.batch_sharding(mesh)

  def jit(fn, in_shardings, out_shardings, donate=()):
    if mesh is None:
      return jax.jit(fn, donate_argnums=donate)
    return jax.jit(fn, in_shardings=in_shardings,
                   out_shardings=out_shardings, donate_argnums=donate)

  def with_fingerprint(state, report):
    return state, report, masks_lib.fingerprint(state.masks)

  train = jit(functools.partial(train_step, **kw), (state_sh, batch_sh),
              (state_sh, state_sh), donate=0)
  train_with_grads = None
  if algo is not None and algo.needs_grads:
    train_with_grads = jit(
        functools.partial(train_step, return_grads=True, **kw),
        (state_sh, batch_sh), (state_sh, state_sh, state_sh), donate=0)
  evaluate = jit(functools.partial(eval_step, **kw), (state_sh, batch_sh),
                 state_sh)
  if algo is None:
    return Steps(train, None, evaluate, None, None)
  # Replicated in and out: every device holds the same new masks.
  rewire = jit(lambda s, g: with_fingerprint(*state_lib.rewire(algo, s, g)),
               (state_sh, state_sh), state_sh, donate=0)
  end_iteration = jit(
      lambda s: with_fingerprint(*state_lib.end_iteration(algo, s)),
      (state_sh,), state_sh, donate=0)
  return Steps(train, train_with_grads, evaluate, rewire, end_iteration)
