"""Spiking neurons as pure functions, by name.

A neuron is a step function ``step(state, x_t, params) -> (state, spike_t)``
over a pytree state (LIF/IF: the membrane potential) with one
:class:`NeuronParams`; :func:`multistep` unrolls it over time-major ``x``
``[T, ...]`` and returns ``(spikes, final_state)``, so a stream can be run
chunk by chunk. Dynamics follow SpikingJelly's ``LIFNode`` / ``IFNode`` in
multi-step mode::

    LIF, decay_input=False:  H[t] = V[t-1] - (V[t-1] - v_reset) / tau + X[t]
    LIF, decay_input=True:   H[t] = V[t-1] + (X[t] - (V[t-1] - v_reset)) / tau
    IF:                      H[t] = V[t-1] + X[t]
    S[t] = heaviside(H[t] - v_threshold)           # heaviside(0) = 1
    hard reset (v_reset is a float): V[t] = H[t] * (1 - S[t]) + v_reset * S[t]
    soft reset (v_reset is None):    V[t] = H[t] - v_threshold * S[t]
    V[-1] = v_reset (hard) or 0 (soft)

With soft reset the charge equations use ``v_reset = 0``. ``detach_reset=True``
stops the gradient through ``S[t]`` in the reset term only. The forward pass
always emits exact 0/1 spikes; the backward pass replaces the Heaviside step's
derivative by a surrogate (:func:`surrogate`).

Kinds by name (:func:`get`): ``"lif"``, ``"if"`` and ``"plif"`` (LIF with a
learned ``tau``). A new kind is one step function plus
``register(name, step)``; models then take ``neuron=name``.

Files: ``surrogates`` (spike functions), ``core`` (NeuronParams,
fire_and_reset, multistep), ``registry``, and one file per neuron kind
(``lif``, ``if_``, ``plif``).
"""

from __future__ import annotations

from snn_sparse.neurons.core import (InitFn, NeuronParams, State, StepFn,
                                     fire_and_reset, multistep,
                                     rest_potential)
from snn_sparse.neurons.registry import (Neuron, TrainableFn, get, names,
                                         register)
from snn_sparse.neurons.surrogates import (SURROGATES, SpikeFn, SurrogateLike,
                                           get_spike_fn, heaviside, surrogate)
# The built-in kinds register themselves on import.
from snn_sparse.neurons.lif import lif_charge, lif_multistep, lif_step
from snn_sparse.neurons.if_ import if_charge, if_multistep, if_step
from snn_sparse.neurons.plif import plif_trainable

__all__ = [
    "NeuronParams", "State", "StepFn", "InitFn", "rest_potential",
    "fire_and_reset", "multistep",
    "Neuron", "TrainableFn", "register", "get", "names",
    "SURROGATES", "SpikeFn", "SurrogateLike", "heaviside", "surrogate",
    "get_spike_fn",
    "lif_charge", "lif_step", "lif_multistep",
    "if_charge", "if_step", "if_multistep",
    "plif_trainable",
]
