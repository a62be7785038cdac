"""Parametric LIF (Fang et al. 2021): LIF with a learned time constant.

One trained scalar ``w`` per layer, ``tau = 1 / sigmoid(w)``, initialised so
that ``tau`` starts at ``params.tau`` (which must be > 1). The dynamics are
:func:`neurons.lif_step`'s. ``w`` is a neuron parameter: never masked, never
pruned.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from snn_sparse.neurons import registry
from snn_sparse.neurons.core import NeuronParams
from snn_sparse.neurons.lif import lif_step


def plif_trainable(params: NeuronParams, param: Callable,
                   x: jax.Array) -> NeuronParams:
  """Creates ``w`` (float32 ``()``) with ``param``; returns ``params`` with
  ``tau = 1 / sigmoid(w)`` in ``x``'s dtype."""
  if params.tau <= 1.0:
    raise ValueError(f"PLIF needs an initial tau > 1; got tau={params.tau}.")
  w0 = -math.log(params.tau - 1.0)
  w = param("w", jax.nn.initializers.constant(w0), (), jnp.float32)
  return params.replace(tau=1.0 / jax.nn.sigmoid(w).astype(x.dtype))


registry.register("plif", lif_step, trainable=plif_trainable)
