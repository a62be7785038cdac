"""Prune and grow kernels, growth scores and optimizer-moment reset.

Every operation here is a pure function with data-independent shapes, so it
can run inside one ``jax.jit`` whose compiled form does not change when the
per-unit counts change: counts are traced int arrays, and selection is done
with a sort plus a per-unit threshold and an exact tie rank, never with
data-dependent shapes.

**Units.** Work is done on *unit rows* ``(U, n)`` (see
:class:`snn_sparse.sparsity.layout.UnitLayout`): one row per unit of the scope
(``layer``: one row per kernel; ``neuron``: one row per output feature;
``global``: one row holding all masked kernels). Counts ``k`` are given per
unit.

**Exactness.** :func:`select_smallest` picks *exactly* ``min(k, #eligible)``
entries per row, even with ties (e.g. all ``|w|`` equal): entries strictly
below the ``k``-th smallest value are taken, then ties at that value are taken
in index order (or in the order of an optional random tie-break key) until
the count is met.

**One rewiring step** (:func:`prune_and_grow_rows`, :func:`prune_and_grow`),
per unit:

1. prune: drop the ``k`` active synapses with the smallest ``|w|``;
2. grow: activate as many synapses as were pruned, the ones with the largest
   growth score among the *candidates*. By default candidates are the
   synapses that were inactive *before* this step's prune, so no synapse is
   pruned and regrown in the same step (SET, ESL, the PQ method).
   ``allow_regrow=True`` makes the just-pruned synapses candidates too
   (RigL's rule: the candidates are the synapses inactive after the drop);
   a synapse dropped and regrown in the same step then simply stays, with
   its weight and optimizer moments, and counts as neither pruned nor
   grown (RigL's reference, ``reinit_when_same=False``).
   If a unit has fewer candidates than pruned synapses it grows all of them
   and the difference is reported as ``shortfall`` (density falls a little:
   e.g. a fully dense unit, such as an ERK layer capped at density 1, loses
   up to ``k`` synapses once). ``limit_to_candidates=True`` instead prunes
   only as many as can be regrown, so density stays exactly constant;
3. grown (new) weights are set to 0 and their optimizer moments reset to 0.

Growth scores (:func:`growth_scores`): ``"momentum"`` (the optimizer's
momentum: SGD's ``trace``, or Adam-style ``mu / (sqrt(nu) + eps)``, found
anywhere inside an optax state), ``"gradient"`` (``|dense gradient|``, RigL)
or ``"random"`` (SET). They are only informative if the optimizer receives
*dense* gradients (see :mod:`snn_sparse.training.train_state`).

:func:`prune` is the prune step alone (no growth): density falls.
:func:`apply_result` applies a result to params and the optimizer state.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity import optimizer_state
from snn_sparse.sparsity.layout import GLOBAL, UnitLayout

PyTree = Any

GROW_METHODS = ("momentum", "gradient", "random")


# ---------------------------------------------------------------------------
# Exact per-row selection.
# ---------------------------------------------------------------------------


def _finite(v: jax.Array) -> jax.Array:
  big = jnp.finfo(v.dtype).max
  return jnp.where(jnp.isnan(v), big, jnp.clip(v, -big, big))


@jax.jit
def select_smallest(values: jax.Array, eligible: jax.Array, k: jax.Array, *,
                    tiebreak: jax.Array | None = None) -> jax.Array:
  """Per row, the ``k`` eligible entries with the smallest values.

  Args:
    values: float ``(U, n)``. NaN counts as the largest value.
    eligible: bool ``(U, n)``; only these entries can be selected.
    k: int ``(U,)`` (or scalar), the count per row; traced values are fine.
    tiebreak: optional float ``(U, n)``; equal values are ordered by it
      (e.g. uniform noise for random tie-breaking). Default: index order.

  Returns:
    bool ``(U, n)`` with exactly ``clip(k, 0, #eligible)`` ``True`` per row,
    all of them eligible.
  """
  values = jnp.asarray(values)
  if not jnp.issubdtype(values.dtype, jnp.floating):
    values = values.astype(jnp.float32)
  n_units, n = values.shape
  k = jnp.broadcast_to(jnp.asarray(k, jnp.int32), (n_units,))
  eligible = jnp.asarray(eligible, bool)
  if n == 0:
    return jnp.zeros((n_units, n), bool)
  key = jnp.where(eligible, _finite(values), jnp.inf)
  if tiebreak is not None:
    iota = lax.broadcasted_iota(jnp.int32, (n_units, n), 1)
    _, _, perm = lax.sort((key, tiebreak.astype(key.dtype), iota),
                          dimension=1, num_keys=2)
    rows = jnp.arange(n_units)[:, None]
    sel = jnp.zeros((n_units, n), bool).at[rows, perm].set(iota < k[:, None])
    return sel & eligible
  sorted_key = jnp.sort(key, axis=1)
  kth = jnp.take_along_axis(sorted_key, (jnp.clip(k, 1, n) - 1)[:, None],
                            axis=1)
  below = eligible & (key < kth)
  at = eligible & (key == kth)
  need = k[:, None] - jnp.sum(below, axis=1, keepdims=True, dtype=jnp.int32)
  tie_rank = jnp.cumsum(at, axis=1, dtype=jnp.int32)
  return (below | (at & (tie_rank <= need))) & (k[:, None] > 0)


@jax.jit
def select_largest(values: jax.Array, eligible: jax.Array, k: jax.Array, *,
                   tiebreak: jax.Array | None = None) -> jax.Array:
  """Like :func:`select_smallest` for the largest values (NaN: smallest)."""
  values = jnp.asarray(values)
  if not jnp.issubdtype(values.dtype, jnp.floating):
    values = values.astype(jnp.float32)
  return select_smallest(-values, eligible, k, tiebreak=tiebreak)


# ---------------------------------------------------------------------------
# Row-level prune and grow.
# ---------------------------------------------------------------------------


def prune_rows(w_rows: jax.Array, eligible_rows: jax.Array,
               k: jax.Array) -> jax.Array:
  """Per row the ``k`` eligible entries of smallest ``|w|``: bool ``(U, n)``."""
  return select_smallest(jnp.abs(w_rows), eligible_rows, k)


def prune_and_grow_rows(w_rows: jax.Array, mask_rows: jax.Array, k: jax.Array,
                        score_rows: jax.Array, *, allow_regrow: bool = False,
                        eligible_rows: jax.Array | None = None,
                        tiebreak_rows: jax.Array | None = None,
                        limit_to_candidates: bool = False
                        ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One constant-density rewiring of unit rows.

  Args:
    w_rows: float ``(U, n)`` weights.
    mask_rows: bool ``(U, n)`` current mask.
    k: int ``(U,)`` synapses to prune per unit.
    score_rows: float ``(U, n)`` growth scores (larger grows first).
    allow_regrow: if True, synapses pruned in this step may be regrown.
    eligible_rows: optional bool ``(U, n)``; only active synapses that are
      also eligible may be pruned (default: all active ones).
    tiebreak_rows: optional float ``(U, n)`` random tie-break for growth.
    limit_to_candidates: prune at most as many synapses as a unit has
      inactive ones (only matters with ``allow_regrow=False``), so every
      pruned synapse is replaced and density stays exactly constant.

  Returns:
    ``(new_mask, pruned, grown)``, bool ``(U, n)`` each: ``pruned`` the
    synapses removed, ``grown`` the new connections. With ``allow_regrow``
    a synapse dropped and regrown in the same step is in neither (it keeps
    its weight and moments, RigL's ``reinit_when_same=False``). Per unit
    ``sum(grown) = min(sum(pruned), #candidates)``.
  """
  mask_rows = jnp.asarray(mask_rows, bool)
  eligible = mask_rows if eligible_rows is None else mask_rows & eligible_rows
  if limit_to_candidates and not allow_regrow:
    n_inactive = jnp.sum(~mask_rows, axis=1, dtype=jnp.int32)
    k = jnp.minimum(jnp.asarray(k, jnp.int32), n_inactive)
  pruned = prune_rows(w_rows, eligible, k)
  after = mask_rows & ~pruned
  candidates = ~after if allow_regrow else ~mask_rows
  n_pruned = jnp.sum(pruned, axis=1, dtype=jnp.int32)
  grown = select_largest(score_rows, candidates, n_pruned,
                         tiebreak=tiebreak_rows)
  # A synapse dropped and regrown in the same step simply stays: it is
  # neither pruned nor grown, so it keeps its weight and optimizer moments.
  return after | grown, pruned & ~grown, grown & ~mask_rows


# ---------------------------------------------------------------------------
# Tree-level prune and grow.
# ---------------------------------------------------------------------------


class RewireResult(NamedTuple):
  """Outcome of a prune (and grow) over a tree.

  Attributes:
    masks: the new mask tree.
    pruned: bool tree (mask structure), synapses removed in this step.
    grown: bool tree (mask structure), synapses added (all ``False`` for a
      net prune).
    num_pruned: ``{path: int32 ()}`` synapses removed per masked kernel.
    num_grown: ``{path: int32 ()}`` synapses added per masked kernel.
    shortfall: int32 scalar, synapses that should have been regrown but had
      no candidate (pruned minus grown, summed over units); 0 for a net
      prune.
  """

  masks: PyTree
  pruned: PyTree
  grown: PyTree
  num_pruned: dict[str, jax.Array]
  num_grown: dict[str, jax.Array]
  shortfall: jax.Array


def counts_to_rows(counts, layout: UnitLayout) -> dict[str, jax.Array]:
  """Per-unit counts ``{name: int32 (U,)}`` from the public count format.

  ``layer``: ``{path: ()}``; ``neuron``: ``{path: (out,)}``; ``global``: a
  scalar (or ``{"global": ()}``). See :func:`pq.tree_rewire_count`.
  """
  if layout.scope == GLOBAL:
    if isinstance(counts, Mapping):
      counts = counts[GLOBAL]
    return {GLOBAL: jnp.reshape(jnp.asarray(counts, jnp.int32), (1,))}
  if not isinstance(counts, Mapping):
    raise ValueError(
        f"counts for scope={layout.scope!r} must be a dict keyed by kernel "
        f"path ({layout.paths}), got {type(counts).__name__}.")
  out = {}
  for path, shape in zip(layout.paths, layout.shapes):
    if path not in counts:
      raise ValueError(f"counts has no entry for masked kernel {path!r}.")
    units = 1 if layout.scope == "layer" else shape[-1]
    c = jnp.asarray(counts[path], jnp.int32)
    if c.size != units:
      raise ValueError(
          f"counts[{path!r}] must have {units} entries for scope="
          f"{layout.scope!r}, got shape {c.shape}.")
    out[path] = c.reshape(units)
  return out


def _per_kernel_sums(tree, layout) -> dict[str, jax.Array]:
  return {p: jnp.sum(x, dtype=jnp.int32)
          for p, x in layout.kernels(tree).items()}


def make_result(layout: UnitLayout, new: Mapping[str, jax.Array],
                pruned: Mapping[str, jax.Array], grown: Mapping[str, jax.Array],
                *, regrow: bool) -> RewireResult:
  """Packs unit-row outcomes ``{name: (U, n)}`` into a :class:`RewireResult`.

  ``regrow``: whether the step meant to regrow what it pruned (constant
  density); the shortfall is then pruned minus grown, else 0.
  """
  masks = layout.unrows(new)
  pruned_t = layout.unrows(pruned)
  grown_t = layout.unrows(grown)
  num_pruned = _per_kernel_sums(pruned_t, layout)
  num_grown = _per_kernel_sums(grown_t, layout)
  zero = jnp.zeros((), jnp.int32)
  shortfall = (sum(num_pruned.values(), zero) - sum(num_grown.values(), zero)
               if regrow else zero)
  return RewireResult(masks, pruned_t, grown_t, num_pruned, num_grown,
                      shortfall)


@functools.partial(jax.jit, static_argnames=("scope",))
def prune(params: PyTree, masks: PyTree, counts, *, scope: str = "layer",
          eligible: PyTree | None = None) -> RewireResult:
  """Net prune: per unit remove the ``counts`` smallest-``|w|`` active synapses.

  Args:
    params: params tree.
    masks: mask tree (bool per masked kernel, ``None`` elsewhere).
    counts: per-unit counts in the format of :func:`counts_to_rows`.
    scope: ``"layer"``, ``"neuron"`` or ``"global"``.
    eligible: optional bool tree (mask structure); active synapses outside it
      are protected from pruning.

  Returns:
    A :class:`RewireResult` with ``grown`` all ``False``.
  """
  layout = UnitLayout(masks, scope)
  w, m = layout.rows(params), layout.rows(masks)
  e = m if eligible is None else {
      n: m[n] & v for n, v in layout.rows(eligible).items()}
  k = counts_to_rows(counts, layout)
  pruned = {n: prune_rows(w[n], e[n], k[n]) for n in layout.names}
  new = {n: m[n] & ~pruned[n] for n in layout.names}
  grown = {n: jnp.zeros_like(m[n]) for n in layout.names}
  return make_result(layout, new, pruned, grown, regrow=False)


@functools.partial(jax.jit, static_argnames=("scope", "allow_regrow",
                                             "limit_to_candidates"))
def prune_and_grow(params: PyTree, masks: PyTree, counts, scores: PyTree, *,
                   scope: str = "layer", allow_regrow: bool = False,
                   eligible: PyTree | None = None,
                   tiebreak_key: jax.Array | None = None,
                   limit_to_candidates: bool = False) -> RewireResult:
  """Constant-density rewiring of a tree (see the module docstring).

  Args:
    params: params tree.
    masks: mask tree.
    counts: per-unit prune counts (format of :func:`counts_to_rows`).
    scores: growth scores, a params- or mask-structured tree (``None``
      allowed at unmasked leaves); larger grows first.
    scope: ``"layer"``, ``"neuron"`` or ``"global"``.
    allow_regrow: let synapses pruned in this step be regrown (RigL).
    eligible: optional bool tree; only these active synapses can be pruned.
    tiebreak_key: optional key; if given, growth ties are broken at random
      instead of by index (slower: a two-key sort).
    limit_to_candidates: see :func:`prune_and_grow_rows`.

  Returns:
    A :class:`RewireResult`.
  """
  layout = UnitLayout(masks, scope)
  w, m, s = layout.rows(params), layout.rows(masks), layout.rows(scores)
  e = None if eligible is None else layout.rows(eligible)
  k = counts_to_rows(counts, layout)
  new, pruned, grown = {}, {}, {}
  for i, n in enumerate(layout.names):
    tb = None
    if tiebreak_key is not None:
      tb = jax.random.uniform(jax.random.fold_in(tiebreak_key, i), m[n].shape)
    new[n], pruned[n], grown[n] = prune_and_grow_rows(
        w[n], m[n], k[n], s[n], allow_regrow=allow_regrow,
        eligible_rows=None if e is None else e[n], tiebreak_rows=tb,
        limit_to_candidates=limit_to_candidates)
  return make_result(layout, new, pruned, grown, regrow=True)


# ---------------------------------------------------------------------------
# Growth scores and the optimizer's moments.
# ---------------------------------------------------------------------------


def growth_scores(method: str, params: PyTree, masks: PyTree, *,
                  opt_state: PyTree = None, grads: PyTree = None,
                  key: jax.Array | None = None, eps: float = 1e-8) -> PyTree:
  """Growth scores, a mask-structured tree (float per masked kernel).

  Args:
    method: ``"momentum"`` (``|optimizer_momentum|``), ``"gradient"``
      (``|grads|``) or ``"random"`` (uniform, from ``key``).
    params: params tree.
    masks: mask tree; scores are produced for its non-``None`` leaves.
    opt_state: the optax state (``"momentum"``).
    grads: dense gradients w.r.t. the effective weights (``"gradient"``).
    key: a ``jax.random.key`` (``"random"``).
    eps: Adam's epsilon for ``mu / (sqrt(nu) + eps)``.
  """
  if method not in GROW_METHODS:
    raise ValueError(
        f"argument 'grow' must be one of {list(GROW_METHODS)}, got "
        f"{method!r}.")
  if method == "momentum":
    source = optimizer_state.optimizer_momentum(opt_state, params, eps=eps)
  elif method == "gradient":
    if grads is None:
      raise ValueError(
          "grow='gradient' needs the dense gradient: pass grads (w.r.t. the "
          "effective weights params * masks).")
    source = grads
  else:
    if key is None:
      raise ValueError("grow='random' needs a 'key'.")
    leaves, treedef = jax.tree.flatten(masks, is_leaf=masks_lib.is_none)
    out = [None if m is None else
           jax.random.uniform(jax.random.fold_in(key, i), m.shape)
           for i, m in enumerate(leaves)]
    return jax.tree.unflatten(treedef, out)
  return jax.tree.map(lambda m, s: None if m is None else jnp.abs(s),
                      masks, source, is_leaf=masks_lib.is_none)


def apply_result(params: PyTree, opt_state: PyTree, result: RewireResult
                 ) -> tuple[PyTree, PyTree]:
  """Applies a :class:`RewireResult`: ``(params, opt_state)`` after it.

  Inactive and grown weights become 0 (a synapse dropped and regrown in the
  same event keeps its weight); the optimizer moments of grown synapses are
  reset to 0 (:func:`optimizer_state.reset_moments`).
  """
  def fix(m, w, g):
    if m is None:
      return w
    return jnp.where(m & ~g, w, jnp.zeros((), w.dtype))

  params = jax.tree.map(fix, result.masks, params, result.grown,
                        is_leaf=masks_lib.is_none)
  return params, optimizer_state.reset_moments(opt_state, result.grown)
