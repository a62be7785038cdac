"""Spiking neurons as pure functions: surrogate spikes and LIF / IF dynamics.

Shapes are time-major: a multi-step input ``x`` is ``[T, ...]`` (usually
``[T, B, ...]``) and the output spikes have the same shape and dtype.

Dynamics (SpikingJelly's ``LIFNode`` / ``IFNode`` in multi-step mode)::

    decay_input=False:  H[t] = V[t-1] - (V[t-1] - v_reset) / tau + X[t]
    decay_input=True:   H[t] = V[t-1] + (X[t] - (V[t-1] - v_reset)) / tau
    IF:                 H[t] = V[t-1] + X[t]
    S[t] = heaviside(H[t] - v_threshold)           # heaviside(0) = 1
    hard reset (v_reset is a float): V[t] = H[t] * (1 - S[t]) + v_reset * S[t]
    soft reset (v_reset is None):    V[t] = H[t] - v_threshold * S[t]
    V[-1] = v_reset (hard) or 0 (soft)

With soft reset the charge equations use ``v_reset = 0``. ``detach_reset=True``
stops the gradient through ``S[t]`` in the reset term only.

The forward pass always emits exact 0/1 spikes; the backward pass replaces the
Heaviside step's derivative by a surrogate (see :func:`surrogate`). Nothing
here holds state: time is unrolled with ``jax.lax.scan``.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Union

import jax
import jax.numpy as jnp

SpikeFn = Callable[[jax.Array], jax.Array]
SurrogateLike = Union[str, SpikeFn]


def _sigmoid_grad(x, alpha):
  s = jax.nn.sigmoid(alpha * x)
  return alpha * s * (1.0 - s)


def _atan_grad(x, alpha):
  return alpha / 2.0 / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)


def _triangle_grad(x, gamma):
  return jnp.maximum(0.0, 1.0 / gamma - jnp.abs(x) / gamma**2)


def _rectangle_grad(x, a):
  return jnp.where(jnp.abs(x) < a / 2.0, 1.0 / a, 0.0)


# name -> (derivative(x, param), parameter name, default value)
SURROGATES = {
    "sigmoid": (_sigmoid_grad, "alpha", 4.0),
    "atan": (_atan_grad, "alpha", 2.0),
    "triangle": (_triangle_grad, "gamma", 1.0),
    "rectangle": (_rectangle_grad, "a", 1.0),
}


def heaviside(x: jax.Array) -> jax.Array:
  """Exact step: 1 where ``x >= 0``, else 0, in ``x``'s dtype."""
  x = jnp.asarray(x)
  return (x >= 0).astype(x.dtype)


@functools.lru_cache(maxsize=None)
def _make_spike_fn(name: str, value: float) -> SpikeFn:
  grad_fn = SURROGATES[name][0]

  @jax.custom_vjp
  def spike(x):
    return heaviside(x)

  def fwd(x):
    return heaviside(x), x

  def bwd(x, g):
    return (g * jnp.asarray(grad_fn(x, value), g.dtype),)

  spike.defvjp(fwd, bwd)
  spike.__name__ = f"{name}_spike"
  spike.__doc__ = f"Heaviside forward, {name}({SURROGATES[name][1]}={value}) backward."
  return spike


def surrogate(name: str, **params: float) -> SpikeFn:
  """Returns a spike function ``x -> heaviside(x)`` with a surrogate gradient.

  ``x`` is ``H - v_threshold`` (any shape). Forward: exact 0/1 (1 at x = 0).
  Backward, with ``s = sigmoid(alpha * x)``:

  - ``sigmoid(alpha=4.0)``: ``alpha * s * (1 - s)``
  - ``atan(alpha=2.0)``: ``alpha / 2 / (1 + (pi/2 * alpha * x)**2)``
  - ``triangle(gamma=1.0)``: ``max(0, 1/gamma - |x|/gamma**2)``
  - ``rectangle(a=1.0)``: ``1/a`` where ``|x| < a/2``, else 0

  The same (name, params) always returns the same function object.
  """
  if name not in SURROGATES:
    raise ValueError(
        f"Unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}.")
  _, pname, default = SURROGATES[name]
  unknown = set(params) - {pname}
  if unknown:
    raise ValueError(
        f"Surrogate {name!r} takes only {pname!r}; got {sorted(unknown)}.")
  value = float(params.get(pname, default))
  if value <= 0:
    raise ValueError(f"Surrogate {name!r}: {pname} must be > 0, got {value}.")
  return _make_spike_fn(name, value)


def get_spike_fn(spec: SurrogateLike) -> SpikeFn:
  """A surrogate name (default parameters) or a spike function, as a function."""
  return surrogate(spec) if isinstance(spec, str) else spec


def fire_and_reset(h, *, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                   spike_fn: SurrogateLike = "sigmoid"):
  """Fires and resets from the charged potential ``h``; returns ``(v, spike)``.

  ``v_reset=None`` is soft reset (subtract ``v_threshold``); a float is hard
  reset to that value. ``detach_reset`` blocks the gradient through the spike
  in the reset term.
  """
  spike = get_spike_fn(spike_fn)(h - v_threshold)
  s = jax.lax.stop_gradient(spike) if detach_reset else spike
  if v_reset is None:
    v = h - v_threshold * s
  else:
    v = h * (1.0 - s) + v_reset * s
  return v, spike


def lif_charge(v, x, *, tau=2.0, v_reset=0.0, decay_input=False):
  """LIF charge ``H[t]`` from ``V[t-1]`` and ``X[t]``; ``tau`` may be an array."""
  base = 0.0 if v_reset is None else v_reset
  if decay_input:
    return v + (x - (v - base)) / tau
  return v - (v - base) / tau + x


def if_charge(v, x):
  """IF charge: ``H[t] = V[t-1] + X[t]``."""
  return v + x


def lif_step(v, x, *, tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=False,
             detach_reset=False, surrogate: SurrogateLike = "sigmoid"):
  """One LIF step ``(V[t-1], X[t]) -> (V[t], S[t])``; all shapes equal."""
  h = lif_charge(v, x, tau=tau, v_reset=v_reset, decay_input=decay_input)
  return fire_and_reset(h, v_threshold=v_threshold, v_reset=v_reset,
                        detach_reset=detach_reset, spike_fn=surrogate)


def if_step(v, x, *, v_threshold=1.0, v_reset=0.0, detach_reset=False,
            surrogate: SurrogateLike = "sigmoid"):
  """One IF step ``(V[t-1], X[t]) -> (V[t], S[t])``; all shapes equal."""
  return fire_and_reset(if_charge(v, x), v_threshold=v_threshold,
                        v_reset=v_reset, detach_reset=detach_reset,
                        spike_fn=surrogate)


def initial_potential(x_t: jax.Array, v_reset) -> jax.Array:
  """``V[-1]``: ``v_reset`` for hard reset, 0 for soft, shaped like ``x_t``."""
  return jnp.full_like(x_t, 0.0 if v_reset is None else v_reset)


def multistep(step_fn, x: jax.Array, *, v_reset=0.0, return_v=False,
              unroll: int | bool = 1, remat: bool = False):
  """Unrolls ``step_fn(v, x_t) -> (v, s_t)`` over the leading axis of ``x``.

  Args:
    step_fn: a one-step neuron function, e.g. a partial of :func:`lif_step`.
    x: input current, ``[T, ...]``.
    v_reset: sets ``V[-1]`` (``None``: soft reset, starts at 0).
    return_v: also return the potentials after reset, ``[T, ...]``.
    unroll: ``jax.lax.scan``'s unroll factor (``True`` unrolls all of T).
    remat: wrap the step in ``jax.checkpoint``: the backward pass stores only
      ``V[t-1]`` and ``X[t]`` per step and recomputes the rest (less memory for
      long T; forward values and gradients are unchanged).

  Returns:
    spikes ``[T, ...]``, or ``(spikes, v_seq)`` when ``return_v``.
  """
  if x.ndim < 1:
    raise ValueError(f"x must be time-major [T, ...]; got shape {x.shape}.")

  def body(v, x_t):
    v, s = step_fn(v, x_t)
    return v, (s, v) if return_v else s

  if remat:
    body = jax.checkpoint(body)
  _, out = jax.lax.scan(body, initial_potential(x[0], v_reset), x,
                        unroll=unroll)
  return out


def lif_multistep(x, *, tau=2.0, v_threshold=1.0, v_reset=0.0,
                  decay_input=False, detach_reset=False,
                  surrogate: SurrogateLike = "sigmoid", return_v=False,
                  unroll: int | bool = 1, remat: bool = False):
  """Multi-step LIF neuron over time-major ``x`` ``[T, ...]``.

  Returns spikes ``[T, ...]`` (0/1, ``x.dtype``), or ``(spikes, v_seq)`` with
  ``return_v=True`` where ``v_seq[t]`` is the potential after step t's reset.
  ``tau`` may be a float or an array broadcastable to ``x[0]`` (PLIF).
  ``unroll`` and ``remat`` are those of :func:`multistep`.
  See the module docstring for the exact dynamics.
  """
  step = functools.partial(
      lif_step, tau=tau, v_threshold=v_threshold, v_reset=v_reset,
      decay_input=decay_input, detach_reset=detach_reset,
      surrogate=get_spike_fn(surrogate))
  return multistep(step, x, v_reset=v_reset, return_v=return_v, unroll=unroll,
                   remat=remat)


def if_multistep(x, *, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                 surrogate: SurrogateLike = "sigmoid", return_v=False,
                 unroll: int | bool = 1, remat: bool = False):
  """Multi-step IF neuron (LIF without leak) over ``x`` ``[T, ...]``.

  Same outputs as :func:`lif_multistep`.
  """
  step = functools.partial(
      if_step, v_threshold=v_threshold, v_reset=v_reset,
      detach_reset=detach_reset, surrogate=get_spike_fn(surrogate))
  return multistep(step, x, v_reset=v_reset, return_v=return_v, unroll=unroll,
                   remat=remat)
