"""What sparse training reads from and writes into an optax optimizer state.

Any optax optimizer works, however nested (``chain``,
``inject_hyperparams``, ...): its *moments* are found as the sub-trees of the
state that have the structure of ``params`` (SGD's ``trace``, Adam's ``mu``
and ``nu``, ...). Counts, schedules and hyperparameters are other sub-trees
and are never touched by :func:`reset_moments`.

* :func:`optimizer_momentum`: the momentum that growth by momentum ranks.
* :func:`reset_moments`: zero the moments of grown synapses.
* :func:`restart`: the state of a freshly initialised optimizer (SAP).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax import tree_utils as otu

from snn_sparse.sparsity import masks as masks_lib

PyTree = Any


def _moment_candidates(opt_state, name, treedef):
  def matches(path, value):
    del path
    return jax.tree.structure(value) == treedef

  return otu.tree_get_all_with_path(opt_state, name, filtering=matches)


def optimizer_momentum(opt_state: PyTree, params: PyTree, *,
                       eps: float = 1e-8) -> PyTree:
  """The momentum an optax state holds for ``params`` (params structure).

  Searches ``opt_state`` for params-shaped moment trees: Adam-style ``mu``
  (with ``nu`` from the same state, giving ``mu / (sqrt(nu) + eps)``; ``mu``
  alone if there is no ``nu``, e.g. Lion), else SGD's momentum ``trace``.
  Moments are used without bias correction, which scales a whole kernel
  uniformly and so does not change any ranking.

  Raises:
    ValueError: if the state holds no params-shaped momentum (e.g. plain
      ``optax.sgd`` without ``momentum``).
  """
  treedef = jax.tree.structure(params)
  mus = _moment_candidates(opt_state, "mu", treedef)
  if mus:
    mu_path, mu = mus[0]
    for nu_path, nu in _moment_candidates(opt_state, "nu", treedef):
      if tuple(nu_path[:-1]) == tuple(mu_path[:-1]):
        return jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu)
    return mu
  traces = _moment_candidates(opt_state, "trace", treedef)
  if traces:
    return traces[0][1]
  raise ValueError(
      "grow='momentum' needs an optimizer with momentum, but the optimizer "
      "state holds no params-shaped 'trace' (optax.sgd(..., momentum=...)) or "
      "'mu' (Adam-style) tree. Use an optimizer with momentum, or set "
      "sparsity.grow to 'gradient' or 'random'.")


class _NoMask:
  """Stands for a ``None`` mask entry, so that a mask tree has params' shape."""

  def __repr__(self):
    return "NO_MASK"


_NO_MASK = _NoMask()


def _zero_where(v, g):
  if (g is _NO_MASK or not hasattr(v, "shape")
      or tuple(v.shape) != tuple(jnp.shape(g))):
    return v
  return jnp.where(g, jnp.zeros((), v.dtype), v)


def reset_moments(opt_state: PyTree, grown: PyTree) -> PyTree:
  """Zeroes every params-shaped optimizer moment where ``grown`` is True.

  Args:
    opt_state: an optax state (any nesting).
    grown: bool mask-structured tree (``None`` at unmasked leaves), or
      ``None`` (nothing grown: ``opt_state`` is returned as is).

  Returns:
    ``opt_state`` with the entries of grown synapses zeroed in every sub-tree
    that has the structure of the masks' params; all else unchanged.
  """
  if grown is None:
    return opt_state
  full = jax.tree.map(lambda g: _NO_MASK if g is None else g, grown,
                      is_leaf=masks_lib.is_none)
  treedef = jax.tree.structure(full)

  def is_moment(x):
    try:
      return jax.tree.structure(x) == treedef
    except Exception:  # pylint: disable=broad-except
      return False

  return jax.tree.map(
      lambda x: jax.tree.map(_zero_where, x, full) if is_moment(x) else x,
      opt_state, is_leaf=is_moment)


def _is_hyperparams_state(x) -> bool:
  return isinstance(x, (optax.InjectHyperparamsState,
                        optax.InjectStatefulHyperparamsState))


def restart(opt_state: PyTree) -> PyTree:
  """The state of the same optimizer as freshly initialised.

  Every array of ``opt_state`` becomes 0 (moments, step counts), except the
  current values of ``optax.inject_hyperparams``, which its next update
  recomputes from the restarted count. This is ``tx.init(params)`` for every
  optax optimizer whose state starts at zero (SGD with momentum, Adam, AdamW,
  their schedules and chains); an optimizer that starts elsewhere must be
  re-initialised with its own ``init``.
  """
  def zero(x):
    if _is_hyperparams_state(x):
      return x._replace(count=jnp.zeros_like(x.count),
                        inner_state=restart(x.inner_state),
                        **({"hyperparams_states": restart(
                            x.hyperparams_states)}
                           if hasattr(x, "hyperparams_states") else {}))
    return jnp.zeros_like(x)

  return jax.tree.map(zero, opt_state, is_leaf=_is_hyperparams_state)
