"""Masks: a pytree with the structure of ``params``.

A mask tree holds a ``bool`` array (same shape as the kernel) for every
*prunable* leaf and ``None`` for every other leaf (biases, BatchNorm scales,
neuron parameters such as PLIF's ``w``). A leaf is prunable when its
``/``-joined parameter path matches :data:`PRUNABLE_PATTERN`; by default
that is every Flax ``Conv``/``Dense`` ``kernel`` and nothing else.

Example paths: ``"Conv_0/kernel"`` (prunable), ``"BatchNorm_0/scale"`` and
``"SpikingNeuron_0/w"`` (not prunable).
"""

from __future__ import annotations

import re
from typing import Any

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


def prunable_paths(params: PyTree, pattern: str = PRUNABLE_PATTERN) -> list[str]:
  """The ``/``-joined paths of all prunable leaves of ``params``, in tree order."""
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
