"""The state of a sparsity algorithm: masks plus what the algorithm tracks."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

PyTree = Any


@flax.struct.dataclass
class SparseState:
  """A pytree; built by ``algo.init`` and returned by every event.

  Attributes:
    masks: a bool array per prunable kernel and ``None`` for every other
      leaf of ``params``; or ``None`` for a dense run.
    iteration: int32 scalar, the iteration boundaries passed
      (``end_iteration`` calls).
    grown: bool mask-structured tree of the synapses grown since the last
      iteration boundary (``None`` for algorithms that do not grow).
    rewind_params: the params an algorithm rewinds to (``sap``: the masked
      initial params); ``None`` otherwise.
    extra: free for algorithms registered from user code; ``None`` for the
      built-in ones.
  """

  masks: PyTree
  iteration: jax.Array
  grown: PyTree = None
  rewind_params: PyTree = None
  extra: PyTree = None

  @classmethod
  def from_masks(cls, masks: PyTree) -> "SparseState":
    """A state holding ``masks`` only (iteration 0): a fixed mask."""
    return cls(masks=masks, iteration=jnp.zeros((), jnp.int32))
