"""The trainer's state, its dense-gradient update and its sparsity events.

Gradient semantics (read this before writing a sparsity algorithm):

  The forward pass uses the *effective* weights ``W_eff = params * masks``.
  The loss is differentiated with respect to ``W_eff`` itself, not with
  respect to ``params`` through the product, so the gradient is **dense**: it
  is non-zero at inactive positions too. The optimizer sees that dense
  gradient, so its moments (SGD's momentum trace, Adam's ``mu``/``nu``) carry
  information about synapses that do not exist yet. That is what momentum
  growth (the PQ-index method) and gradient growth (RigL) rank. The optimizer
  is wrapped in ``sparsity.masked``, whose updates are 0 at inactive
  weights, so they stay exactly 0 after every step.

  Differentiating with respect to ``params`` through ``params * masks`` would
  make every inactive gradient exactly 0, and momentum or gradient growth would
  silently degrade to random growth.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from snn_sparse import sparsity as sparsity_lib
from snn_sparse.sparsity.masks import apply_masks
from snn_sparse.sparsity.state import SparseState

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything that defines a run at one step; checkpointed whole.

  Attributes:
    step: int32 scalar, optimizer steps taken.
    params: model parameters (inactive kernel entries are exactly 0).
    batch_stats: BatchNorm running statistics (may be an empty dict).
    sparsity: the sparsity algorithm's :class:`SparseState` (its ``masks``:
      a bool array per prunable kernel, ``None`` elsewhere; ``None``: dense).
    opt_state: the optax state of ``tx``.
    rng: a ``jax.random.key`` for dropout and the sparsity events.
    apply_fn: ``model.apply`` (static, not checkpointed).
    tx: the optimizer, wrapped in ``sparsity.masked`` (static).
  """

  step: jax.Array
  params: PyTree
  batch_stats: PyTree
  sparsity: SparseState
  opt_state: PyTree
  rng: jax.Array
  apply_fn: Callable = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformationExtraArgs = flax.struct.field(
      pytree_node=False)

  @classmethod
  def create(cls, *, apply_fn, params, tx, sparsity=None, batch_stats=None,
             rng=None):
    """A state at step 0: ``params`` masked, then ``masked(tx).init``.

    ``sparsity``: the algorithm's ``algo.init(params, key)``; ``None``:
    dense, no masks.
    """
    if sparsity is None:
      sparsity = SparseState.from_masks(None)
    params = apply_masks(params, sparsity.masks)
    tx = sparsity_lib.masked(tx)
    return cls(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats={} if batch_stats is None else batch_stats,
        sparsity=sparsity,
        opt_state=tx.init(params),
        rng=jax.random.key(0) if rng is None else rng,
        apply_fn=apply_fn,
        tx=tx,
    )

  @property
  def masks(self) -> PyTree:
    """The sparsity state's masks (``None``: dense)."""
    return self.sparsity.masks

  def effective_params(self) -> PyTree:
    """``params * masks``: the weights the forward pass uses."""
    return apply_masks(self.params, self.masks)

  def apply_dense_gradients(self, grads: PyTree) -> "TrainState":
    """One optimizer step from gradients taken w.r.t. the effective weights.

    ``grads`` are dense (see the module docstring). The masked optimizer
    zeroes the updates of inactive weights, and the masks are applied to
    the new params as well, so an inactive weight is exactly 0 after the step
    even if it was not before. ``step`` increases by one.
    """
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params,
                                        masks=self.masks)
    params = apply_masks(optax.apply_updates(self.params, updates), self.masks)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state)


def rewire(algo, state: TrainState, grads: PyTree = None
           ) -> tuple[TrainState, dict]:
  """``algo.rewire`` on a :class:`TrainState`; its key comes from
  ``state.rng``, which advances when the event draws from it."""
  params, sparse, opt_state, report = algo.rewire(
      state.params, state.sparsity, state.opt_state, step=state.step,
      key=state.rng, grads=grads)
  rng = jax.random.split(state.rng)[0] if algo.rewire_draws else state.rng
  return state.replace(params=params, sparsity=sparse, opt_state=opt_state,
                       rng=rng), report


def end_iteration(algo, state: TrainState) -> tuple[TrainState, dict]:
  """``algo.end_iteration`` on a :class:`TrainState` (see :func:`rewire`)."""
  params, sparse, opt_state, report = algo.end_iteration(
      state.params, state.sparsity, state.opt_state, key=state.rng,
      step=state.step)
  rng = (jax.random.split(state.rng)[0] if algo.end_iteration_draws
         else state.rng)
  return state.replace(params=params, sparsity=sparse, opt_state=opt_state,
                       rng=rng), report
