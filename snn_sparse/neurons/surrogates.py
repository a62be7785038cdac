"""Surrogate spike functions: exact Heaviside forward, smooth backward.

A spike function maps ``x = H - v_threshold`` (any shape) to 0/1 spikes of the
same shape and dtype. Its forward pass is the exact step (1 at ``x = 0``); its
backward pass replaces the step's derivative by a surrogate (see
:func:`surrogate`).
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
