"""The training state, and the dense-gradient update that sparse training needs.

Gradient semantics (read this before writing a sparsity algorithm):

  The forward pass uses the *effective* weights ``W_eff = params * masks``.
  The loss is differentiated with respect to ``W_eff`` itself, not with
  respect to ``params`` through the product, so the gradient is **dense**: it
  is non-zero at inactive positions too. The optimizer sees that dense
  gradient, so its moments (SGD's momentum trace, Adam's ``mu``/``nu``) carry
  information about synapses that do not exist yet. That is what momentum
  growth (the PQ-index method) and gradient growth (RigL) rank. After the optax
  update the masks are applied again, so inactive weights are exactly 0 after
  every step.

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

from snn_sparse.sparsity.masks import apply_masks

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything that defines a run at one step; checkpointed whole.

  Attributes:
    step: int32 scalar, optimizer steps taken.
    params: model parameters (inactive kernel entries are exactly 0).
    batch_stats: BatchNorm running statistics (may be an empty dict).
    masks: bool mask per prunable kernel, ``None`` elsewhere; or ``None`` (dense).
    opt_state: the optax state of ``tx``.
    sparsity_state: the sparsity algorithm's own state pytree.
    rng: a ``jax.random.key`` for dropout, random growth and the like.
    apply_fn: ``model.apply`` (static, not checkpointed).
    tx: the optax transformation (static, not checkpointed).
  """

  step: jax.Array
  params: PyTree
  batch_stats: PyTree
  masks: PyTree
  opt_state: PyTree
  sparsity_state: PyTree
  rng: jax.Array
  apply_fn: Callable = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, apply_fn, params, tx, batch_stats=None, masks=None,
             sparsity_state=None, rng=None):
    """Builds a state at step 0; ``params`` are masked before ``tx.init``."""
    params = apply_masks(params, masks)
    return cls(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats={} if batch_stats is None else batch_stats,
        masks=masks,
        opt_state=tx.init(params),
        sparsity_state={} if sparsity_state is None else sparsity_state,
        rng=jax.random.key(0) if rng is None else rng,
        apply_fn=apply_fn,
        tx=tx,
    )

  def effective_params(self) -> PyTree:
    """``params * masks``: the weights the forward pass uses."""
    return apply_masks(self.params, self.masks)

  def apply_dense_gradients(self, grads: PyTree) -> "TrainState":
    """One optimizer step from gradients taken w.r.t. the effective weights.

    ``grads`` are dense (see the module docstring). The optax update is
    applied to ``params``, then the masks are re-applied, so inactive
    weights stay exactly 0. ``step`` increases by one.
    """
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    params = apply_masks(optax.apply_updates(self.params, updates), self.masks)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state)
