"""Unit rows: the masked kernels of a tree as 2-D ``(U, n)`` arrays, per scope.

A *unit* is the group of weights that shares one PQ index, ratio and count:
a whole kernel (``"layer"``), one output feature (``"neuron"``: unit ``j``
of a kernel ``(..., in, out)`` is ``w[..., j]``), or all masked kernels
together (``"global"``). :class:`UnitLayout` maps a tree onto one
``(U, n)`` block of rows per kernel (one block in ``"global"`` scope) and
back, so per-unit quantities are plain vectorised array code in every scope.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from snn_sparse.sparsity import masks as masks_lib

PyTree = Any

SCOPES = ("layer", "neuron", "global")
#: Name of the single unit block in ``"global"`` scope.
GLOBAL = "global"


def check_scope(scope: str, allowed=SCOPES) -> None:
  """Raises ``ValueError`` naming ``scope`` unless it is one of ``allowed``."""
  if scope not in allowed:
    raise ValueError(
        f"argument 'scope' must be one of {list(allowed)}, got {scope!r}.")



def to_unit_rows(x: jax.Array, scope: str) -> jax.Array:
  """Reshapes a kernel ``(..., out)`` to unit rows ``(U, n)``.

  ``layer``: ``(1, size)``; ``neuron``: ``(out, size // out)`` with row ``j``
  holding ``x[..., j]`` flattened in C order.
  """
  check_scope(scope, ("layer", "neuron"))
  if scope == "layer":
    return x.reshape(1, -1)
  return x.reshape(-1, x.shape[-1]).T


def from_unit_rows(rows: jax.Array, shape: tuple[int, ...],
                   scope: str) -> jax.Array:
  """Inverse of :func:`to_unit_rows` for a kernel of shape ``shape``."""
  check_scope(scope, ("layer", "neuron"))
  if scope == "layer":
    return rows.reshape(shape)
  return rows.T.reshape(shape)


class UnitLayout:
  """Maps the masked kernels of a tree to per-scope unit rows and back.

  Built from a mask tree (static structure only, so it is cheap and safe to
  build inside ``jit``). ``names`` are the block names: the masked kernels'
  paths for ``layer``/``neuron`` scope, ``[GLOBAL]`` for ``global`` scope,
  where all masked kernels are flattened and concatenated into one row.

  Attributes:
    scope: the scope.
    paths: paths of the masked kernels, in tree order.
    shapes: their shapes, aligned with ``paths``.
    names: block names (see above).
  """

  def __init__(self, masks: PyTree, scope: str):
    check_scope(scope)
    if masks is None:
      raise ValueError("UnitLayout needs a mask tree, got masks=None.")
    self.scope = scope
    flat, self._treedef = jax.tree_util.tree_flatten_with_path(
        masks, is_leaf=masks_lib.is_none)
    self._index = [i for i, (_, m) in enumerate(flat) if m is not None]
    self.paths = [masks_lib.path_str(flat[i][0]) for i in self._index]
    self.shapes = [tuple(flat[i][1].shape) for i in self._index]
    self._num_leaves = len(flat)
    self.names = [GLOBAL] if scope == GLOBAL else list(self.paths)
    self.sizes = [math.prod(s) for s in self.shapes]

  def _leaves(self, tree: PyTree) -> list[Any]:
    leaves = jax.tree.leaves(tree, is_leaf=masks_lib.is_none)
    if len(leaves) != self._num_leaves:
      raise ValueError(
          "tree structure does not match the mask tree: "
          f"{len(leaves)} leaves vs {self._num_leaves}.")
    return [leaves[i] for i in self._index]

  def kernels(self, tree: PyTree) -> dict[str, Any]:
    """The leaves of ``tree`` at masked positions, keyed by path."""
    return dict(zip(self.paths, self._leaves(tree)))

  def rows(self, tree: PyTree) -> dict[str, jax.Array]:
    """Unit rows ``{name: (U, n)}`` of a params-shaped ``tree``."""
    leaves = self._leaves(tree)
    if self.scope == GLOBAL:
      if not leaves:
        return {GLOBAL: jnp.zeros((1, 0))}
      return {GLOBAL: jnp.concatenate([jnp.ravel(x) for x in leaves])[None]}
    return {p: to_unit_rows(x, self.scope) for p, x in zip(self.paths, leaves)}

  def unrows(self, rows: Mapping[str, jax.Array]) -> PyTree:
    """Inverse of :meth:`rows`: a mask-structured tree, ``None`` elsewhere."""
    if self.scope == GLOBAL:
      flat = rows[GLOBAL][0]
      kernels, start = [], 0
      for shape, size in zip(self.shapes, self.sizes):
        kernels.append(flat[start:start + size].reshape(shape))
        start += size
    else:
      kernels = [from_unit_rows(rows[p], s, self.scope)
                 for p, s in zip(self.paths, self.shapes)]
    leaves = [None] * self._num_leaves
    for i, k in zip(self._index, kernels):
      leaves[i] = k
    return jax.tree.unflatten(self._treedef, leaves)

  def per_layer(self, values: Mapping[str, jax.Array],
                reduce: str = "mean",
                weights: Mapping[str, jax.Array] | None = None
                ) -> dict[str, jax.Array]:
    """Per-layer scalars from per-unit values ``{name: (U,)}``.

    ``reduce="mean"`` averages the units of a layer (weighted by ``weights``
    when given, e.g. active counts); ``"sum"`` sums them. In ``global`` scope
    every layer gets the single global value (for ``"mean"``); ``"sum"`` is
    not defined per layer there and raises.
    """
    if self.scope == GLOBAL:
      if reduce != "mean":
        raise ValueError("per-layer sums are not defined in global scope.")
      v = jnp.mean(values[GLOBAL])
      return {p: v for p in self.paths}
    out = {}
    for p in self.paths:
      v = values[p]
      if reduce == "sum":
        out[p] = jnp.sum(v)
      elif weights is None:
        out[p] = jnp.mean(v)
      else:
        wt = weights[p].astype(v.dtype)
        tot = jnp.sum(wt)
        out[p] = jnp.where(tot > 0, jnp.sum(v * wt) / jnp.where(
            tot > 0, tot, 1), jnp.mean(v))
    return out
