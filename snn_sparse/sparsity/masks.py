"""Masks: a pytree with the structure of ``params``.

A mask tree holds a ``bool`` array (same shape as the kernel) for every
*masked* leaf and ``None`` for every other leaf (biases, BatchNorm scales,
neuron parameters such as PLIF's ``w``). A leaf is prunable when its
``/``-joined parameter path matches :data:`PRUNABLE_PATTERN`; by default
that is every Flax ``Conv``/``Dense`` ``kernel`` and nothing else. Masked
leaves are the prunable ones, minus any kept dense on purpose
(``dense_first``/``dense_last`` in :func:`init_masks`): those get ``None``
too, so no sparsity algorithm ever touches them. ``masks=None`` (or a tree
of ``None``) means dense.

Example paths: ``"Conv_0/kernel"`` (prunable), ``"BatchNorm_0/scale"`` and
``"SpikingNeuron_0/w"`` (not prunable).

Map over masks and params together with ``is_leaf=is_none``::

    jax.tree.map(lambda m, w: w if m is None else w * m, masks, params,
                 is_leaf=is_none)

Initialisation (:func:`init_masks`) draws random masks with *exact* per-layer
counts at a global target density, distributed ``uniform``, Erdős–Rényi
(``er``) or Erdős–Rényi-Kernel (``erk``) over layers
(:func:`layer_densities`, :func:`layer_counts`). :func:`mask_stats` gives
per-layer and total connectivity and the non-zero parameter count.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp

PyTree = Any

#: Regex on the ``/``-joined parameter path selecting prunable kernels.
PRUNABLE_PATTERN = r"(^|/)kernel$"


def path_str(path) -> str:
  """Joins a ``jax.tree_util`` key path into ``"a/b/kernel"``."""
  parts = []
  for k in path:
    if isinstance(k, jax.tree_util.DictKey):
      parts.append(str(k.key))
    elif isinstance(k, jax.tree_util.GetAttrKey):
      parts.append(k.name)
    elif isinstance(k, jax.tree_util.SequenceKey):
      parts.append(str(k.idx))
    else:
      parts.append(str(k))
  return "/".join(parts)


def is_prunable(path: str, pattern: str = PRUNABLE_PATTERN) -> bool:
  """True when the ``/``-joined parameter ``path`` names a prunable kernel."""
  return re.search(pattern, path) is not None


def prunable_paths(params: PyTree,
                   pattern: str = PRUNABLE_PATTERN) -> list[str]:
  """The ``/``-joined paths of the prunable leaves of ``params``, tree order."""
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return [path_str(p) for p, _ in leaves if is_prunable(path_str(p), pattern)]


def is_none(x) -> bool:
  """``is_leaf`` predicate that keeps ``None`` mask entries as leaves."""
  return x is None


def apply_masks(params: PyTree, masks: PyTree) -> PyTree:
  """Returns ``params`` with every masked kernel multiplied by its mask.

  Leaves whose mask is ``None`` pass through unchanged. ``masks=None`` means
  dense (no masks) and returns ``params`` itself.
  """
  if masks is None:
    return params
  return jax.tree.map(
      lambda m, w: w if m is None else w * m.astype(w.dtype),
      masks, params, is_leaf=is_none)


def masked_paths(masks: PyTree) -> list[str]:
  """Paths of the leaves that carry a mask (non-``None``), in tree order."""
  if masks is None:
    return []
  flat = jax.tree_util.tree_flatten_with_path(masks, is_leaf=is_none)[0]
  return [path_str(p) for p, m in flat if m is not None]


def full_masks(params: PyTree, *, pattern: str = PRUNABLE_PATTERN,
               exclude: Sequence[str] = ()) -> PyTree:
  """All-``True`` masks for every prunable kernel not in ``exclude``."""
  exclude = set(exclude)

  def f(path, w):
    s = path_str(path)
    if is_prunable(s, pattern) and s not in exclude:
      return jnp.ones(jnp.shape(w), bool)
    return None

  return jax.tree_util.tree_map_with_path(f, params)


def ordered_prunable_paths(params: PyTree,
                           pattern: str = PRUNABLE_PATTERN) -> list[str]:
  """Prunable paths in the *insertion order* of the (nested) params dicts.

  ``jax.tree`` functions visit dict keys in sorted order (``Conv_10`` before
  ``Conv_2``). Flax Linen builds its params dicts in the order submodules are
  first called, so insertion order is the network's order: the first path is
  the input layer, the last one the output layer. Non-dict nodes fall back to
  ``jax.tree`` order.
  """
  out = []

  def walk(node, prefix):
    if isinstance(node, Mapping):
      for k, v in node.items():
        walk(v, prefix + (str(k),))
    else:
      for p, _ in jax.tree_util.tree_flatten_with_path(node)[0]:
        s = "/".join(prefix + ((path_str(p),) if p else ()))
        if is_prunable(s, pattern):
          out.append(s)

  walk(params, ())
  return out


# ---------------------------------------------------------------------------
# Random initialisation: ER / ERK / uniform at a global density.
# ---------------------------------------------------------------------------

INIT_METHODS = ("er", "erk", "uniform", "dense")


def _density_scale(shape: tuple[int, ...], method: str) -> float:
  """Un-normalised per-layer density of ``er``/``erk``/``uniform``."""
  if method == "uniform" or len(shape) < 2:
    return 1.0
  if method == "er":
    n_in, n_out = shape[-2], shape[-1]
    return (n_in + n_out) / (n_in * n_out)
  return sum(shape) / math.prod(shape)  # erk


def _check_density(density, name="density"):
  if not isinstance(density, numbers.Real) or not 0 < density <= 1:
    raise ValueError(f"argument '{name}' must be in (0, 1], got {density!r}.")


def _check_method(method):
  if method not in INIT_METHODS:
    raise ValueError(
        f"argument 'method' must be one of {list(INIT_METHODS)}, got "
        f"{method!r}.")


def _masked_shapes(params, pattern, dense_first, dense_last):
  order = ordered_prunable_paths(params, pattern)
  keep_dense = set()
  if order and dense_first:
    keep_dense.add(order[0])
  if order and dense_last:
    keep_dense.add(order[-1])
  shapes = {}
  for p, w in jax.tree_util.tree_flatten_with_path(params)[0]:
    s = path_str(p)
    if is_prunable(s, pattern) and s not in keep_dense:
      shapes[s] = tuple(jnp.shape(w))
  return shapes, keep_dense


def layer_densities(params: PyTree, *, method: str = "erk",
                    density: float = 0.5, pattern: str = PRUNABLE_PATTERN,
                    dense_first: bool = False, dense_last: bool = False
                    ) -> dict[str, float]:
  """Per-layer target densities whose size-weighted mean is ``density``.

  ``uniform``: every masked kernel gets ``density``. ``er``: density
  proportional to ``(n_in + n_out) / (n_in * n_out)`` with ``n_in, n_out =
  shape[-2:]`` (channels; a conv's spatial extent is ignored, as in
  Erdős–Rényi for conv layers in the RigL paper). ``erk``: proportional to
  ``sum(shape) / prod(shape)`` (spatial extent included). A layer whose
  density would exceed 1 is capped at 1 and the others are re-solved until
  none exceeds. ``dense``: 1 everywhere.

  Kernels kept dense by ``dense_first``/``dense_last`` get no mask and are
  excluded here; ``density`` is the target over the masked kernels only.

  Returns:
    ``{path: density}`` (Python floats) over the masked kernels, tree order.
  """
  _check_method(method)
  _check_density(density)
  shapes, _ = _masked_shapes(params, pattern, dense_first, dense_last)
  if method == "dense" or density == 1:
    return {p: 1.0 for p in shapes}
  paths = list(shapes)
  sizes = [math.prod(shapes[p]) for p in paths]
  scales = [_density_scale(shapes[p], method) for p in paths]
  budget = density * sum(sizes)
  capped = set()
  eps = 0.0
  while True:
    free = [i for i in range(len(paths)) if i not in capped]
    if not free:
      break
    eps = ((budget - sum(sizes[i] for i in capped))
           / sum(scales[i] * sizes[i] for i in free))
    over = {i for i in free if eps * scales[i] > 1.0}
    if not over:
      break
    capped |= over
  return {p: 1.0 if i in capped else eps * scales[i]
          for i, p in enumerate(paths)}


def layer_counts(params: PyTree, *, method: str = "erk", density: float = 0.5,
                 pattern: str = PRUNABLE_PATTERN, dense_first: bool = False,
                 dense_last: bool = False) -> dict[str, int]:
  """Exact active counts per masked kernel for :func:`init_masks`.

  Each count is ``floor`` or ``ceil`` of ``layer_density * size``, chosen by
  largest remainder so that the total is exactly ``round(density * N)``
  (``N``: size of all masked kernels). Every layer keeps at least one
  synapse.
  """
  dens = layer_densities(params, method=method, density=density,
                         pattern=pattern, dense_first=dense_first,
                         dense_last=dense_last)
  shapes, _ = _masked_shapes(params, pattern, dense_first, dense_last)
  sizes = {p: math.prod(shapes[p]) for p in dens}
  exact = {p: dens[p] * sizes[p] for p in dens}
  counts = {p: min(sizes[p], math.floor(exact[p] + 1e-9)) for p in dens}
  target = round(density * sum(sizes.values()))
  remainder = target - sum(counts.values())
  order = sorted(dens, key=lambda p: exact[p] - counts[p], reverse=True)
  for p in order:
    if remainder <= 0:
      break
    if counts[p] < sizes[p]:
      counts[p] += 1
      remainder -= 1
  return {p: max(1, c) for p, c in counts.items()}


def init_masks(params: PyTree, *, method: str = "erk", density: float = 0.5,
               key: jax.Array, pattern: str = PRUNABLE_PATTERN,
               dense_first: bool = False, dense_last: bool = False) -> PyTree:
  """Random masks with exact per-layer counts at a global target density.

  Args:
    params: the params tree (only shapes are used).
    method: ``"er"``, ``"erk"``, ``"uniform"`` or ``"dense"`` (see
      :func:`layer_densities`).
    density: target fraction of active weights over the masked kernels.
    key: a ``jax.random.key``; each layer draws from ``fold_in(key, i)``.
    pattern: regex selecting prunable kernels (see :func:`is_prunable`).
    dense_first: keep the first prunable kernel (network order, see
      :func:`ordered_prunable_paths`) dense: it gets mask ``None``, so no
      algorithm ever prunes it and masked-density statistics exclude it.
    dense_last: the same for the last prunable kernel.

  Returns:
    A mask tree: for every masked kernel a ``bool`` array with exactly
    ``layer_counts(...)[path]`` ``True`` entries at uniformly random
    positions (a random permutation, not Bernoulli draws); ``None`` for all
    other leaves.
  """
  counts = layer_counts(params, method=method, density=density,
                        pattern=pattern, dense_first=dense_first,
                        dense_last=dense_last)
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  paths = [path_str(p) for p, _ in flat]
  shapes = tuple(tuple(jnp.shape(w)) if s in counts else None
                 for s, (_, w) in zip(paths, flat))
  index = {p: i for i, p in enumerate(counts)}
  ids = tuple(index.get(s, -1) for s in paths)
  # One compiled function for the whole tree; counts are traced.
  drawn = _draw_masks(key, [counts.get(s, 0) for s in paths], shapes, ids)
  return jax.tree.unflatten(treedef, drawn)


@functools.partial(jax.jit, static_argnames=("shapes", "ids"))
def _draw_masks(key, counts, shapes, ids):
  """Per leaf: True at the first ``count`` positions of a permutation."""
  out = []
  for count, shape, i in zip(counts, shapes, ids):
    if shape is None:
      out.append(None)
      continue
    size = math.prod(shape)
    perm = jax.random.permutation(jax.random.fold_in(key, i), size)
    flat = jnp.zeros((size,), bool).at[perm].set(jnp.arange(size) < count)
    out.append(flat.reshape(shape))
  return out


# ---------------------------------------------------------------------------
# Statistics.
# ---------------------------------------------------------------------------


def mask_stats(params: PyTree, masks: PyTree, *,
               pattern: str = PRUNABLE_PATTERN) -> dict[str, Any]:
  """Connectivity and parameter counts; jit-friendly (values are arrays).

  Returns a dict with:

  * ``"layers"``: ``{path: {"active", "total", "density"}}`` for every
    masked kernel and every prunable kernel without a mask (dense, density 1).
  * ``"active"``, ``"total"``, ``"density"``: over all prunable kernels
    (masked and dense-kept): the paper's "connectivity".
  * ``"masked_active"``, ``"masked_total"``, ``"masked_density"``: over the
    masked kernels only (what the sparsity algorithms control).
  * ``"nonzero"``: non-zero entries of ``params * masks`` over *all* params
    (biases, BatchNorm and neuron parameters included): the paper's "nonzero
    parameters". ``"num_params"``: total number of parameters.

  ``masks=None`` means dense: every prunable kernel counts as fully active.
  """
  return _mask_stats_jit(params, masks, pattern=pattern)


def _mask_stats(params: PyTree, masks: PyTree, *,
                pattern: str = PRUNABLE_PATTERN) -> dict[str, Any]:
  """Un-jitted :func:`mask_stats`."""
  mask_leaves = (None if masks is None
                 else jax.tree.leaves(masks, is_leaf=is_none))
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  if mask_leaves is not None and len(mask_leaves) != len(flat):
    raise ValueError("mask tree structure does not match params.")
  layers = {}
  zero = jnp.zeros((), jnp.int32)
  act, tot, m_act, m_tot, nonzero, nparams = zero, 0, zero, 0, zero, 0
  for i, (p, w) in enumerate(flat):
    s = path_str(p)
    m = None if mask_leaves is None else mask_leaves[i]
    size = math.prod(jnp.shape(w))
    nparams += size
    eff = w if m is None else jnp.where(m, w, 0)
    nonzero = nonzero + jnp.sum(eff != 0, dtype=jnp.int32)
    if m is not None:
      a = jnp.sum(m, dtype=jnp.int32)
      m_act, m_tot = m_act + a, m_tot + size
    elif is_prunable(s, pattern):
      a = jnp.asarray(size, jnp.int32)
    else:
      continue
    act, tot = act + a, tot + size
    layers[s] = {"active": a, "total": jnp.asarray(size, jnp.int32),
                 "density": a.astype(jnp.float32) / max(size, 1)}
  return {
      "layers": layers,
      "active": act,
      "total": jnp.asarray(tot, jnp.int32),
      "density": act.astype(jnp.float32) / max(tot, 1),
      "masked_active": m_act,
      "masked_total": jnp.asarray(m_tot, jnp.int32),
      "masked_density": m_act.astype(jnp.float32) / max(m_tot, 1),
      "nonzero": nonzero,
      "num_params": jnp.asarray(nparams, jnp.int32),
  }


_mask_stats_jit = jax.jit(_mask_stats, static_argnames=("pattern",))


def fingerprint(masks: PyTree) -> jax.Array:
  """A uint32 digest of which synapses are active, over all masked kernels.

  Two mask trees with the same fingerprint are, with high probability,
  identical; a cheap way to check that runs (e.g. on different device
  counts) take the same rewiring decisions. ``masks=None`` gives 0.
  """
  total = jnp.zeros((), jnp.uint32)
  leaves = [] if masks is None else [
      m for m in jax.tree.leaves(masks, is_leaf=is_none) if m is not None]
  for i, m in enumerate(leaves):
    pos = (jnp.arange(m.size, dtype=jnp.uint32)
           + jnp.uint32((i * 0x9E3779B9) % (1 << 32)))
    h = pos * jnp.uint32(2654435761)
    h = h ^ (h >> jnp.uint32(15))
    total = total + jnp.sum(jnp.where(m.reshape(-1), h, jnp.uint32(0)),
                            dtype=jnp.uint32)
  return total
