"""Leaky integrate-and-fire (SpikingJelly's ``LIFNode``, multi-step mode).

State: the membrane potential ``V``, shaped like one time step. Per step::

    decay_input=False:  H[t] = V[t-1] - (V[t-1] - v_reset) / tau + X[t]
    decay_input=True:   H[t] = V[t-1] + (X[t] - (V[t-1] - v_reset)) / tau
    S[t], V[t] = fire_and_reset(H[t])

With soft reset (``v_reset=None``) the charge uses ``v_reset = 0``.
"""

from __future__ import annotations

import jax

from snn_sparse.neurons import registry
from snn_sparse.neurons.core import NeuronParams, fire_and_reset, multistep


def lif_charge(v: jax.Array, x: jax.Array, params: NeuronParams) -> jax.Array:
  """LIF charge ``H[t]`` from ``V[t-1]`` and ``X[t]`` (equal shapes)."""
  base = 0.0 if params.v_reset is None else params.v_reset
  if params.decay_input:
    return v + (x - (v - base)) / params.tau
  return v - (v - base) / params.tau + x


def lif_step(v: jax.Array, x: jax.Array,
             params: NeuronParams = NeuronParams()):
  """One LIF step ``(V[t-1], X[t]) -> (V[t], S[t])``; all shapes equal."""
  return fire_and_reset(lif_charge(v, x, params), params)


def lif_multistep(x: jax.Array, params: NeuronParams | None = None, *,
                  return_v: bool = False, unroll: int | bool = 1,
                  remat: bool = False, **fields):
  """Multi-step LIF over time-major ``x`` ``[T, ...]``, from rest.

  ``params`` (default ``NeuronParams()``) with any of its fields overridden
  by keyword (``tau=4.0, v_reset=None, ...``); ``tau`` may be an array
  broadcastable to ``x[0]``. Returns spikes ``[T, ...]`` (0/1, ``x.dtype``),
  or ``(spikes, v_seq)`` with ``return_v=True``, ``v_seq[t]`` the potential
  after step t's reset. ``unroll`` and ``remat`` are those of
  :func:`multistep`, which also continues from a given state.
  """
  params = (NeuronParams() if params is None else params).replace(**fields)
  out, _ = multistep(lif_step, x, params=params, return_states=return_v,
                     unroll=unroll, remat=remat)
  return out


registry.register("lif", lif_step)
