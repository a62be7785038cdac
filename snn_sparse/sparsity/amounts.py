"""How many synapses an event removes per unit: ratio ``c`` and count ``k``.

An amount is a callable ``amount(step=, index=, d=, size=, key=) ->
(ratio, k)`` over the unit rows of a
:class:`~snn_sparse.sparsity.layout.UnitLayout`:
``index`` ``{name: (U,)}`` is the PQ index of each unit, ``d`` ``{name: (U,)}``
the synapses the event may remove, ``size`` ``{name: int}`` the row length,
``key`` a ``jax.random.key`` for stochastic rounding. It returns the ratio
``c`` and the count ``k``, both ``{name: (U,)}``. Built-in amounts are frozen
dataclasses, so an algorithm made of them is hashable (a static argument of
``jax.jit``); any callable with this signature works.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from snn_sparse.sparsity import pq as pq_lib
from snn_sparse.sparsity import schedules

Rows = Mapping[str, jax.Array]


def counts(ratio: Rows, d: Rows, *, rounding: str, key: jax.Array
           ) -> dict[str, jax.Array]:
  """``k = round(c * d)`` per unit (:func:`pq.rewire_count`), block by block.

  Block ``i`` (in ``ratio``'s order) rounds with ``fold_in(key, i)``.
  """
  return {n: pq_lib.rewire_count(ratio[n], d[n], rounding=rounding,
                                 key=jax.random.fold_in(key, i))
          for i, n in enumerate(ratio)}


def _constant(value, index: Rows) -> dict[str, jax.Array]:
  return {n: jnp.broadcast_to(value, index[n].shape) for n in index}


@dataclasses.dataclass(frozen=True)
class PQRatio:
  """The PQ method's ratio ``c`` from each unit's index (:mod:`pq`)."""

  p: float = 0.5
  q: float = 1.0
  alpha_r: float = 0.001
  gamma: float = 1.0
  beta: float = 0.9
  bound_rounding: str = "exact"
  rounding: str = "floor"

  def __call__(self, *, step, index, d, size, key):
    del step, size
    ratio = {n: pq_lib.ratio_from_index(
        index[n], p=self.p, q=self.q, alpha_r=self.alpha_r, gamma=self.gamma,
        beta=self.beta, d=d[n], bound_rounding=self.bound_rounding)
             for n in index}
    return ratio, counts(ratio, d, rounding=self.rounding, key=key)


@dataclasses.dataclass(frozen=True)
class ConstantRatio:
  """The same ratio ``c`` for every unit at every event (ESL, SET)."""

  ratio: float
  rounding: str = "floor"

  def __call__(self, *, step, index, d, size, key):
    del step, size
    ratio = _constant(jnp.asarray(self.ratio, jnp.float32), index)
    return ratio, counts(ratio, d, rounding=self.rounding, key=key)


@dataclasses.dataclass(frozen=True)
class CosineRatio:
  """``c`` decayed from ``initial`` at ``start`` to 0 at ``end`` (RigL)."""

  initial: float
  start: int
  end: int
  rounding: str = "floor"

  def __call__(self, *, step, index, d, size, key):
    del size
    value = schedules.cosine_ratio(step, self.initial, self.start, self.end)
    ratio = _constant(value, index)
    return ratio, counts(ratio, d, rounding=self.rounding, key=key)


@dataclasses.dataclass(frozen=True)
class ScheduledRatio:
  """``c = schedule(step)`` for any step -> ratio function (e.g. an optax
  schedule); the same for every unit."""

  schedule: Callable[[Any], Any]
  rounding: str = "floor"

  def __call__(self, *, step, index, d, size, key):
    del size
    value = jnp.asarray(self.schedule(step), jnp.float32)
    ratio = _constant(value, index)
    return ratio, counts(ratio, d, rounding=self.rounding, key=key)


@dataclasses.dataclass(frozen=True)
class GMPDensity:
  """Zhu & Gupta's cubic density schedule: remove what exceeds the target.

  Each unit keeps ``round(density(step) * size)`` synapses
  (:func:`schedules.gmp_density`); ``k = max(d - keep, 0)`` and the reported
  ratio is ``k / d``.
  """

  target: float
  start: int
  end: int

  def __call__(self, *, step, index, d, size, key):
    del index, key
    density = schedules.gmp_density(step, target=self.target,
                                     start=self.start, end=self.end)
    k, ratio = {}, {}
    for n in d:
      keep = jnp.round(density * size[n]).astype(jnp.int32)
      k[n] = jnp.maximum(d[n] - keep, 0)
      ratio[n] = k[n].astype(jnp.float32) / jnp.maximum(d[n], 1)
    return ratio, k
