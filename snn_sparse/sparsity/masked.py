"""``masked(tx)``: an optax optimizer whose updates keep masked weights at 0."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from snn_sparse.sparsity import masks as masks_lib

PyTree = Any


def masked(tx: optax.GradientTransformation
           ) -> optax.GradientTransformationExtraArgs:
  """Wraps ``tx`` so that ``update(..., masks=masks)`` masks its updates.

  The inner optimizer sees the gradients unchanged: with the dense gradient
  of the loss w.r.t. the effective weights ``params * masks``, its moments
  carry information about inactive synapses, which growth by momentum or by
  gradient ranks. Its updates are then set to 0 wherever a mask is False, so
  weights that are 0 (every inactive weight, after ``apply_masks``) stay
  exactly 0 under any optimizer, weight decay included. ``masks=None``
  (dense) leaves the updates alone. The state is the inner optimizer's own.

  Usage::

    tx = sparsity.masked(optax.sgd(0.05, momentum=0.9))
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params,
                                   masks=state.masks)
    params = optax.apply_updates(params, updates)
  """
  inner = optax.with_extra_args_support(tx)

  def update_fn(updates, state, params=None, *, masks=None, **extra_args):
    updates, state = inner.update(updates, state, params, **extra_args)
    if masks is not None:
      updates = jax.tree.map(
          lambda m, u: u if m is None else jnp.where(
              m, u, jnp.zeros((), u.dtype)),
          masks, updates, is_leaf=masks_lib.is_none)
    return updates, state

  return optax.GradientTransformationExtraArgs(inner.init, update_fn)
