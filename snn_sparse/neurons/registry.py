"""Neuron kinds by name: ``register(name, step, ...)`` and ``get(name)``.

A kind is a step function plus how to start it and, optionally, which of its
parameters are trained. ``layers.SpikingNeuron(kind=name)`` and a model's
``neuron=name`` look the kind up here, so a neuron registered from user code
is usable in every model.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax

from snn_sparse.neurons.core import (InitFn, NeuronParams, StepFn,
                                     rest_potential)

# (params, param, x) -> params: creates trainable values through
# param(name, init_fn, shape, dtype) (Flax's Module.param) and returns the
# params that use them; x is the layer's input [T, B, ...].
TrainableFn = Callable[[NeuronParams, Callable, jax.Array], NeuronParams]


class Neuron(NamedTuple):
  """A registered neuron kind.

  Attributes:
    step: ``(state, x_t, params) -> (state, spike_t)``, one time step.
    init: ``(x_t, params) -> state``, the rest state for one time step
      ``x_t`` (default: the potential ``v_reset``, or 0 for soft reset).
    trainable: ``None``, or ``(params, param, x) -> params``: creates the
      kind's trained parameters with ``param(name, init_fn, shape, dtype)``
      (Flax's ``Module.param``) and returns ``params`` with them in place
      (PLIF: ``tau = 1 / sigmoid(w)``). ``x`` is the layer input
      ``[T, B, ...]``.
  """

  step: StepFn
  init: InitFn = rest_potential
  trainable: Optional[TrainableFn] = None


_NEURONS: dict[str, Neuron] = {}


def register(name: str, step: StepFn, *, init: InitFn = rest_potential,
             trainable: Optional[TrainableFn] = None,
             replace: bool = False) -> Neuron:
  """Registers a neuron kind under ``name`` and returns its entry.

  ``step``, ``init`` and ``trainable`` are those of :class:`Neuron`. A name
  already taken raises a ``ValueError`` unless ``replace=True``.
  """
  if not isinstance(name, str) or not name:
    raise ValueError(f"A neuron kind needs a non-empty name; got {name!r}.")
  if name in _NEURONS and not replace:
    raise ValueError(f"Neuron kind {name!r} is already registered; pass "
                     "replace=True to replace it.")
  if not callable(step):
    raise ValueError(f"Neuron kind {name!r}: step must be callable, got "
                     f"{step!r}.")
  entry = Neuron(step=step, init=init, trainable=trainable)
  _NEURONS[name] = entry
  return entry


def get(name: str) -> Neuron:
  """The neuron kind ``name``; a ``ValueError`` lists the registered ones."""
  if name not in _NEURONS:
    raise ValueError(
        f"Unknown neuron kind {name!r}; choose one of {names()}.")
  return _NEURONS[name]


def names() -> list[str]:
  """The registered neuron kinds, sorted."""
  return sorted(_NEURONS)
