"""The functional neuron core: parameters, fire-and-reset, and the time loop.

A neuron is a pure step function ``step(state, x_t, params) -> (state,
spike_t)`` over a pytree ``state`` (LIF and IF: the membrane potential, shaped
like ``x_t``), with a :class:`NeuronParams`. :func:`multistep` unrolls it
over the leading (time) axis with ``jax.lax.scan`` and returns the final state,
so a long input can be run chunk by chunk.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp

from snn_sparse.neurons.surrogates import SurrogateLike, get_spike_fn

State = Any  # a pytree of arrays


@dataclasses.dataclass(frozen=True)
class NeuronParams:
  """The parameters of a spiking neuron (SpikingJelly's names and defaults).

  Frozen and hashable, so it can be a field of a Flax module or a static
  argument of ``jax.jit``.

  Attributes:
    tau: membrane time constant (``LIFNode.tau``): the potential leaks
      ``1 / tau`` of its distance to the rest value each step. A float, or an
      array broadcastable to one time step (PLIF's learned ``tau``; the
      params are then no longer hashable). IF ignores it.
    v_threshold: firing threshold (``v_threshold``): a spike where the
      charged potential ``H >= v_threshold``.
    v_reset: reset potential (``v_reset``). A float: hard reset to it after a
      spike, and the rest potential. ``None``: soft reset, subtract
      ``v_threshold`` after a spike (rest potential 0).
    decay_input: (``decay_input``) the input is divided by ``tau`` as well
      (``H = V + (X - (V - v_reset)) / tau``); otherwise it is added whole.
    detach_reset: (``detach_reset``) stop the gradient through the spike in
      the reset term only.
    surrogate: (``surrogate_function``) a surrogate name with its default
      parameter (``"sigmoid"``, ``"atan"``, ``"triangle"``, ``"rectangle"``)
      or a spike function such as ``neurons.surrogate("atan", alpha=3.0)``.
  """

  tau: Union[float, jax.Array] = 2.0
  v_threshold: float = 1.0
  v_reset: Optional[float] = 0.0
  decay_input: bool = False
  detach_reset: bool = False
  surrogate: SurrogateLike = "sigmoid"

  def replace(self, **changes) -> NeuronParams:
    """A copy with the given fields changed."""
    return dataclasses.replace(self, **changes)


StepFn = Callable[[State, jax.Array, NeuronParams], tuple[State, jax.Array]]
InitFn = Callable[[jax.Array, NeuronParams], State]


def rest_potential(x_t: jax.Array, params: NeuronParams) -> jax.Array:
  """``V[-1]``: ``v_reset`` for hard reset, 0 for soft, shaped like ``x_t``."""
  return jnp.full_like(x_t, 0.0 if params.v_reset is None else params.v_reset)


def fire_and_reset(h: jax.Array, params: NeuronParams):
  """Fires and resets from the charged potential ``h``; returns ``(v, spike)``.

  ``spike = heaviside(h - v_threshold)`` (surrogate gradient). Hard reset
  (``v_reset`` a float): ``v = h * (1 - spike) + v_reset * spike``; soft reset
  (``v_reset=None``): ``v = h - v_threshold * spike``. ``detach_reset``
  blocks the gradient through the spike in the reset term. Shapes equal.
  """
  spike = get_spike_fn(params.surrogate)(h - params.v_threshold)
  s = jax.lax.stop_gradient(spike) if params.detach_reset else spike
  if params.v_reset is None:
    v = h - params.v_threshold * s
  else:
    v = h * (1.0 - s) + params.v_reset * s
  return v, spike


def multistep(step_fn: StepFn, x: jax.Array, state: State = None, *,
              params: NeuronParams = NeuronParams(),
              init: InitFn = rest_potential, return_states: bool = False,
              unroll: int | bool = 1, remat: bool = False):
  """Runs ``step_fn(state, x_t, params) -> (state, s_t)`` over ``x``'s time.

  Args:
    step_fn: a one-step neuron function, e.g. :func:`neurons.lif_step`.
    x: input current, time-major ``[T, ...]``.
    state: the state before ``x[0]`` (a pytree; LIF/IF: the potential,
      shaped like ``x[0]``), e.g. the final state of the previous chunk.
      ``None``: the rest state ``init(x[0], params)``.
    params: the neuron parameters, passed to ``step_fn`` and ``init``.
    init: ``(x_t, params) -> state``, the rest state; used when ``state`` is
      ``None``.
    return_states: also return the state after each step (after the reset),
      every leaf stacked over time, ``[T, ...]``.
    unroll: ``jax.lax.scan``'s unroll factor (``True`` unrolls all of T).
    remat: wrap the step in ``jax.checkpoint``: the backward pass stores only
      the state and ``x[t]`` per step and recomputes the rest (less memory
      for long T; forward values and gradients are unchanged).

  Returns:
    ``(spikes, final_state)``: spikes ``[T, ...]`` (LIF/IF: 0/1 in ``x``'s
    dtype) and the state after the last step. Running ``x[:k]`` and then ``x[k:]`` from
    that final state continues the run of ``x``: the same spikes and final
    state, up to float rounding (XLA compiles each length separately and may
    simplify, e.g., a division by an array ``tau`` differently).
    With ``return_states``: ``((spikes, states), final_state)``.
  """
  if x.ndim < 1:
    raise ValueError(f"x must be time-major [T, ...]; got shape {x.shape}.")

  def body(carry, x_t):
    carry, s = step_fn(carry, x_t, params)
    return carry, (s, carry) if return_states else s

  if remat:
    body = jax.checkpoint(body)
  if state is None:
    state = init(x[0], params)
  final, out = jax.lax.scan(body, state, x, unroll=unroll)
  return out, final
