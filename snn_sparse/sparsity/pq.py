"""PQ index, retained-weight bound and rewiring ratio, per unit.

The PQ index (Diao et al., ICLR 2023) measures how compressible the ``d``
*active* (unmasked) weights ``w`` of one unit are. For ``0 < p < q``::

    I(w) = 1 - mean(|w|**p)**(1/p) / mean(|w|**q)**(1/q)   # means over active

which equals ``1 - d**(1/q - 1/p) * ||w||_p / ||w||_q``. ``I = 0`` when all
active weights have the same magnitude and grows towards 1 as the mass
concentrates in few entries. ``I = 0`` by definition for a unit with no active
weights or whose active weights are all 0. The index is scale invariant
(``I(a*w) = I(w)``) and cloning invariant (``I([w, w]) = I(w)``).

From ``I`` the method derives, per unit, a lower bound on how many weights to
retain, the rewiring ratio ``c`` and the rewiring count ``k``::

    r = d * (1 + alpha_r)**(-q/(q-p)) * (1 - I)**(q*p/(q-p))
    c = clip(gamma * (1 - r/d), 0, beta)
    k = floor(c * d)                    # or stochastic rounding

``r/d`` (and so ``c``) depends only on ``I``; ``k`` scales with ``d``.

**Units and scopes.** A *unit* is the group of weights that shares one ``I``,
``c`` and ``k``:

* ``"layer"``: a whole kernel; array-level functions return a scalar.
* ``"neuron"``: one output feature. For a Flax kernel of shape
  ``(..., in, out)`` unit ``j`` is ``w[..., j]``; functions return ``(out,)``.
* ``"global"``: all masked kernels of a tree together (tree-level only).

:class:`~snn_sparse.sparsity.layout.UnitLayout` maps the masked kernels of a tree onto 2-D *unit rows*
``(U, n)`` (one row per unit) for a scope and back, so algorithms can compute
per-unit quantities with plain vectorised array code, whatever the scope.

Tree-level functions (``tree_*``) take a ``params`` tree and a mask tree (see
:mod:`snn_sparse.sparsity.masks`); only leaves with a non-``None`` mask are
units (``masks=None`` means every kernel matched by ``pattern``, all active).
They return dicts keyed by ``"a/b/kernel"`` path strings.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity.layout import check_scope, GLOBAL, UnitLayout

PyTree = Any

ROUNDINGS = ("floor", "stochastic")
BOUND_ROUNDINGS = ("exact", "ceil")
#: Relative float tolerance of the rounding in :func:`rewire_count`.
_COUNT_SLACK = 1e-6


# ---------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------


def _is_concrete_number(x) -> bool:
  return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_pq(p, q) -> None:
  """Raises ``ValueError`` unless ``0 < p < q`` (Python numbers)."""
  if not _is_concrete_number(p) or not p > 0:
    raise ValueError(f"PQ index: argument 'p' must be a number > 0, got {p!r}.")
  if not _is_concrete_number(q) or not q > p:
    raise ValueError(
        f"PQ index: argument 'q' must be a number > p = {p}, got {q!r}.")


def _check_ratio_args(alpha_r, gamma, beta) -> None:
  if _is_concrete_number(alpha_r) and alpha_r < 0:
    raise ValueError(f"argument 'alpha_r' must be >= 0, got {alpha_r!r}.")
  if _is_concrete_number(gamma) and gamma < 0:
    raise ValueError(f"argument 'gamma' must be >= 0, got {gamma!r}.")
  if _is_concrete_number(beta) and not 0 <= beta <= 1:
    raise ValueError(f"argument 'beta' must be in [0, 1], got {beta!r}.")


def _float_dtype(dtype):
  return jnp.promote_types(dtype, jnp.float32)


# ---------------------------------------------------------------------------
# Array-level functions.
# ---------------------------------------------------------------------------


def _unit_axes(w: jax.Array, scope: str) -> tuple[int, ...]:
  check_scope(scope, ("layer", "neuron"))
  if scope == "layer":
    return tuple(range(w.ndim))
  if w.ndim < 1:
    raise ValueError("scope='neuron' needs an array with an output axis.")
  return tuple(range(w.ndim - 1))


@functools.partial(jax.jit, static_argnames=("axis", "p", "q"))
def _pq_reduce(w, mask, axis, p, q):
  """PQ index of ``w`` over ``axis`` restricted to ``mask`` (no validation)."""
  dtype = _float_dtype(w.dtype)
  a = jnp.abs(w).astype(dtype)
  m = jnp.ones(w.shape, bool) if mask is None else jnp.asarray(mask, bool)
  a = jnp.where(m, a, 0)
  # Normalise by the largest active magnitude: I is scale invariant, and this
  # keeps |w|**q far from under/overflow.
  amax = jnp.max(a, axis=axis, keepdims=True, initial=0)
  x = a / jnp.where(amax > 0, amax, 1)
  pos = x > 0
  xs = jnp.where(pos, x, 1)  # Guard 0**p (NaN gradients) with a double where.
  sp = jnp.sum(jnp.where(pos, xs**p, 0), axis=axis)
  sq = jnp.sum(jnp.where(pos, xs**q, 0), axis=axis)
  d = jnp.sum(m, axis=axis).astype(dtype)
  valid = (d > 0) & (sq > 0)
  ds = jnp.where(valid, d, 1)
  mean_p = jnp.where(valid, sp / ds, 1)
  mean_q = jnp.where(valid, sq / ds, 1)
  ratio = mean_p**(1.0 / p) / mean_q**(1.0 / q)
  return jnp.where(valid, jnp.clip(1 - ratio, 0, 1), 0)


def pq_index(w: jax.Array, mask: jax.Array | None = None, *, p: float = 0.5,
             q: float = 1.0, scope: str = "layer") -> jax.Array:
  """PQ index of the active entries of ``w``.

  Args:
    w: a kernel, shape ``(..., out)``.
    mask: bool, same shape as ``w``; ``None`` means all entries active.
    p, q: norm orders, ``0 < p < q``.
    scope: ``"layer"`` (one index) or ``"neuron"`` (one per ``out`` index).

  Returns:
    float array, shape ``()`` for ``layer`` and ``(out,)`` for ``neuron``,
    in ``[0, 1)``; 0 for units with no active or only zero weights. Safe under
    ``jit`` and ``grad`` (no NaNs from ``0**p``).
  """
  check_pq(p, q)
  return _pq_reduce(w, mask, _unit_axes(w, scope), p, q)


def num_active(w: jax.Array, mask: jax.Array | None = None, *,
               scope: str = "layer") -> jax.Array:
  """Active count ``d`` per unit: int32, shape ``()`` (layer) or ``(out,)``."""
  axis = _unit_axes(w, scope)
  if mask is None:
    n = 1
    for ax in axis:
      n *= w.shape[ax]
    out_shape = tuple(w.shape[i] for i in range(w.ndim) if i not in axis)
    return jnp.full(out_shape, n, jnp.int32)
  return jnp.sum(jnp.asarray(mask, bool), axis=axis, dtype=jnp.int32)


def retained_fraction(index: jax.Array, *, p: float = 0.5, q: float = 1.0,
                      alpha_r: float = 0.001) -> jax.Array:
  """``r/d = (1 + alpha_r)**(-q/(q-p)) * (1 - I)**(q*p/(q-p))``, elementwise."""
  check_pq(p, q)
  _check_ratio_args(alpha_r, 0.0, 0.0)
  index = jnp.asarray(index)
  one_minus = jnp.clip(1 - index, 0, 1)
  return (1 + alpha_r)**(-q / (q - p)) * one_minus**(q * p / (q - p))


def bound_from_index(index: jax.Array, d: jax.Array, *, p: float = 0.5,
                     q: float = 1.0, alpha_r: float = 0.001) -> jax.Array:
  """Retained-weight lower bound ``r = d * retained_fraction(I)`` (float)."""
  frac = retained_fraction(index, p=p, q=q, alpha_r=alpha_r)
  return jnp.asarray(d, frac.dtype) * frac


def ratio_from_index(index: jax.Array, *, p: float = 0.5, q: float = 1.0,
                     alpha_r: float = 0.001, gamma: float = 1.0,
                     beta: float = 0.9, d: jax.Array | None = None,
                     bound_rounding: str = "exact") -> jax.Array:
  """Rewiring ratio ``c = clip(gamma * (1 - r/d), 0, beta)``, elementwise.

  ``bound_rounding="exact"`` uses the real-valued bound ``r``, so ``c``
  depends on ``I`` only. ``"ceil"`` rounds the bound up first, as Diao et
  al.'s code does: ``c = clip(gamma * (1 - ceil(r)/d), 0, beta)``, which
  needs the active counts ``d`` (int, broadcast with ``index``; ``c = 0``
  where ``d = 0``).
  """
  _check_ratio_args(alpha_r, gamma, beta)
  if bound_rounding not in BOUND_ROUNDINGS:
    raise ValueError(f"argument 'bound_rounding' must be one of "
                     f"{list(BOUND_ROUNDINGS)}, got {bound_rounding!r}.")
  frac = retained_fraction(index, p=p, q=q, alpha_r=alpha_r)
  if bound_rounding == "ceil":
    if d is None:
      raise ValueError("bound_rounding='ceil' needs the active counts 'd'.")
    d = jnp.asarray(d, frac.dtype)
    # ceil(r) / d; the slack keeps an integer r (up to float rounding) as it is.
    r = jnp.ceil(frac * d * (1 - _COUNT_SLACK))
    frac = jnp.where(d > 0, r / jnp.maximum(d, 1), 1)
  return jnp.clip(gamma * (1 - frac), 0, beta)


def retained_bound(w: jax.Array, mask: jax.Array | None = None, *,
                   p: float = 0.5, q: float = 1.0, alpha_r: float = 0.001,
                   scope: str = "layer") -> jax.Array:
  """Lower bound ``r`` on retained weights per unit (float; see module doc).

  Shapes as :func:`pq_index`. ``r = 0`` for a unit with ``d = 0``.
  """
  index = pq_index(w, mask, p=p, q=q, scope=scope)
  d = num_active(w, mask, scope=scope)
  return bound_from_index(index, d, p=p, q=q, alpha_r=alpha_r)


def rewiring_ratio(w: jax.Array, mask: jax.Array | None = None, *,
                   p: float = 0.5, q: float = 1.0, alpha_r: float = 0.001,
                   gamma: float = 1.0, beta: float = 0.9,
                   scope: str = "layer") -> jax.Array:
  """Rewiring ratio ``c`` per unit, in ``[0, beta]``; shapes as ``pq_index``."""
  index = pq_index(w, mask, p=p, q=q, scope=scope)
  return ratio_from_index(index, p=p, q=q, alpha_r=alpha_r, gamma=gamma,
                          beta=beta)


def rewire_count(ratio: jax.Array, d: jax.Array, *, rounding: str = "floor",
                 key: jax.Array | None = None) -> jax.Array:
  """Rewiring count ``k`` from ratio ``c`` and active count ``d``.

  Args:
    ratio: float array of ratios ``c`` (any shape, broadcast with ``d``).
    d: int array of active counts per unit.
    rounding: ``"floor"``: ``k = floor(c*d)``; ``"stochastic"``:
      ``k = floor(c*d + u)`` with ``u ~ U[0, 1)`` drawn per unit from ``key``,
      so that ``E[k] = c*d``.
    key: a ``jax.random.key``; required for ``"stochastic"``.

  Returns:
    int32 array of the broadcast shape, clipped to ``[0, d]``.
  """
  if rounding not in ROUNDINGS:
    raise ValueError(
        f"argument 'rounding' must be one of {list(ROUNDINGS)}, got "
        f"{rounding!r}.")
  d = jnp.asarray(d)
  x = jnp.asarray(ratio, jnp.float32) * d.astype(jnp.float32)
  if rounding == "stochastic":
    if key is None:
      raise ValueError("rounding='stochastic' needs a 'key'.")
    x = x + jax.random.uniform(key, x.shape, x.dtype)
  # A count that is an integer up to float rounding (c*d = 13.9999995) is
  # that integer.
  k = jnp.floor(x + _COUNT_SLACK * jnp.maximum(1.0, jnp.abs(x))).astype(
      jnp.int32)
  return jnp.clip(k, 0, d.astype(jnp.int32))


def pq_index_rows(w_rows: jax.Array, mask_rows: jax.Array | None = None, *,
                  p: float = 0.5, q: float = 1.0) -> jax.Array:
  """PQ index per row of unit rows ``(U, n)``; returns ``(U,)``."""
  check_pq(p, q)
  return _pq_reduce(w_rows, mask_rows, (w_rows.ndim - 1,), p, q)


# ---------------------------------------------------------------------------
# Tree-level functions.
# ---------------------------------------------------------------------------


def _layout_and_masks(params, masks, scope, pattern):
  if masks is None or all(m is None for m in jax.tree.leaves(
      masks, is_leaf=masks_lib.is_none)):
    masks = masks_lib.full_masks(params, pattern=pattern)
  return UnitLayout(masks, scope), masks


def _tree_units(params, masks, p, q, scope, pattern):
  """Per-block index and active counts."""
  layout, masks = _layout_and_masks(params, masks, scope, pattern)
  w_rows = layout.rows(params)
  m_rows = layout.rows(masks)
  index = {n: pq_index_rows(w_rows[n], m_rows[n], p=p, q=q)
           for n in layout.names}
  d = {n: jnp.sum(m_rows[n], axis=-1, dtype=jnp.int32) for n in layout.names}
  return layout, index, d


def _per_path(layout, values):
  """Unit values ``{name: (U,)}`` to ``{path: () or (out,)}``."""
  if layout.scope == GLOBAL:
    return {p: values[GLOBAL][0] for p in layout.paths}
  if layout.scope == "layer":
    return {p: values[p][0] for p in layout.paths}
  return dict(values)


@functools.partial(jax.jit, static_argnames=("p", "q", "scope", "pattern"))
def tree_pq_index(params: PyTree, masks: PyTree, *, p: float = 0.5,
                  q: float = 1.0, scope: str = "layer",
                  pattern: str = masks_lib.PRUNABLE_PATTERN
                  ) -> dict[str, jax.Array]:
  """PQ index of every masked kernel: ``{path: ()}`` or ``{path: (out,)}``.

  In ``global`` scope one index is computed over all masked kernels
  concatenated and every path maps to that same scalar.
  """
  check_pq(p, q)
  layout, index, _ = _tree_units(params, masks, p, q, scope, pattern)
  return _per_path(layout, index)


@functools.partial(jax.jit, static_argnames=("p", "q", "alpha_r", "gamma",
                                             "beta", "scope", "pattern"))
def tree_rewiring_ratio(params: PyTree, masks: PyTree, *, p: float = 0.5,
                        q: float = 1.0, alpha_r: float = 0.001,
                        gamma: float = 1.0, beta: float = 0.9,
                        scope: str = "layer",
                        pattern: str = masks_lib.PRUNABLE_PATTERN
                        ) -> dict[str, jax.Array]:
  """Ratio ``c`` per masked kernel (shapes as :func:`tree_pq_index`)."""
  index = tree_pq_index(params, masks, p=p, q=q, scope=scope, pattern=pattern)
  return {k: ratio_from_index(v, p=p, q=q, alpha_r=alpha_r, gamma=gamma,
                              beta=beta) for k, v in index.items()}


@functools.partial(jax.jit, static_argnames=("p", "q", "alpha_r", "scope",
                                             "pattern"))
def tree_retained_bound(params: PyTree, masks: PyTree, *, p: float = 0.5,
                        q: float = 1.0, alpha_r: float = 0.001,
                        scope: str = "layer",
                        pattern: str = masks_lib.PRUNABLE_PATTERN
                        ) -> dict[str, jax.Array]:
  """Bound ``r`` per masked kernel (float).

  ``layer``: ``()``; ``neuron``: ``(out,)``; ``global``: each layer's active
  count times the global ``r/d``, so the values sum to the global ``r``.
  """
  check_pq(p, q)
  layout, index, d = _tree_units(params, masks, p, q, scope, pattern)
  if layout.scope == GLOBAL:
    frac = retained_fraction(index[GLOBAL][0], p=p, q=q, alpha_r=alpha_r)
    _, masks = _layout_and_masks(params, masks, scope, pattern)
    m = UnitLayout(masks, "layer").kernels(masks)
    return {path: jnp.sum(m[path]).astype(frac.dtype) * frac
            for path in layout.paths}
  r = {n: bound_from_index(index[n], d[n], p=p, q=q, alpha_r=alpha_r)
       for n in layout.names}
  return _per_path(layout, r)


@functools.partial(jax.jit, static_argnames=("p", "q", "alpha_r", "gamma",
                                             "beta", "scope", "rounding",
                                             "bound_rounding", "pattern"))
def tree_rewire_count(params: PyTree, masks: PyTree, *, p: float = 0.5,
                      q: float = 1.0, alpha_r: float = 0.001,
                      gamma: float = 1.0, beta: float = 0.9,
                      scope: str = "layer", rounding: str = "floor",
                      bound_rounding: str = "exact",
                      key: jax.Array | None = None,
                      pattern: str = masks_lib.PRUNABLE_PATTERN):
  """PQ rewiring counts ``k = floor(c*d)`` (or ``rounding="stochastic"``).

  ``bound_rounding``: see :func:`ratio_from_index`.

  The counts come in the format the rewiring functions take.

  Returns:
    ``layer``: ``{path: int32 ()}``; ``neuron``: ``{path: int32 (out,)}``;
    ``global``: one int32 scalar (the global count; it is not split per
    layer, pruning ranks all masked weights together).
  """
  check_pq(p, q)
  layout, index, d = _tree_units(params, masks, p, q, scope, pattern)
  counts = {}
  keys = (jax.random.split(key, len(layout.names)) if key is not None
          else [None] * len(layout.names))
  for n, kk in zip(layout.names, keys):
    c = ratio_from_index(index[n], p=p, q=q, alpha_r=alpha_r, gamma=gamma,
                         beta=beta, d=d[n], bound_rounding=bound_rounding)
    counts[n] = rewire_count(c, d[n], rounding=rounding, key=kk)
  if layout.scope == GLOBAL:
    return counts[GLOBAL][0]
  return _per_path(layout, counts)
