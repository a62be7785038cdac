"""Integrate-and-fire (SpikingJelly's ``IFNode``, multi-step mode): LIF
without leak.

State: the membrane potential ``V``, shaped like one time step. Per step::

    H[t] = V[t-1] + X[t]
    S[t], V[t] = fire_and_reset(H[t])

``tau`` and ``decay_input`` of the params are not used.
"""

from __future__ import annotations

import jax

from snn_sparse.neurons import registry
from snn_sparse.neurons.core import NeuronParams, fire_and_reset, multistep


def if_charge(v: jax.Array, x: jax.Array) -> jax.Array:
  """IF charge: ``H[t] = V[t-1] + X[t]``."""
  return v + x


def if_step(v: jax.Array, x: jax.Array, params: NeuronParams = NeuronParams()):
  """One IF step ``(V[t-1], X[t]) -> (V[t], S[t])``; all shapes equal."""
  return fire_and_reset(if_charge(v, x), params)


def if_multistep(x: jax.Array, params: NeuronParams | None = None, *,
                 return_v: bool = False, unroll: int | bool = 1,
                 remat: bool = False, **fields):
  """Multi-step IF over ``x`` ``[T, ...]``, from rest.

  Arguments and outputs as for :func:`neurons.lif_multistep`.
  """
  params = (NeuronParams() if params is None else params).replace(**fields)
  out, _ = multistep(if_step, x, params=params, return_states=return_v,
                     unroll=unroll, remat=remat)
  return out


registry.register("if", if_step)
