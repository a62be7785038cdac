"""Our spiking neurons as NIR nodes, at a stated time step ``dt``.

NIR states neurons as ODEs; a simulator steps them with forward Euler at its
``dt`` (``snn_sparse.export.nir_reference``; snnTorch's importer uses
``dt = 1e-4``)::

    LIF:  v[t] = v[t-1] + dt / tau * (v_leak - v[t-1] + r * I[t])
    IF:   v[t] = v[t-1] + dt * r * I[t]
    z[t] = v[t] > v_threshold;   v[t] = v_reset where z[t]

Ours (``snn_sparse.neurons``), written in the potential ``u = V - v_reset``
relative to the reset value, with ``beta = 1 - 1 / tau``::

    LIF, decay_input=False:  u_H[t] = beta * u[t-1] + X[t]
    LIF, decay_input=True:   u_H[t] = beta * u[t-1] + X[t] / tau
    IF:                      u_H[t] = u[t-1] + X[t]
    S[t] = u_H[t] >= v_threshold - v_reset;   u[t] = 0 where S[t]

So, per neuron::

    LIF, decay_input=False:  nir.LIF(tau = dt / (1 - beta) = dt * tau,
                                     r = 1 / (1 - beta) = tau, v_leak = 0,
                                     v_threshold = theta', v_reset = 0)
    LIF, decay_input=True:   nir.LIF(tau = dt * tau, r = 1, v_leak = 0, ...)
    IF:                      nir.IF(r = 1 / dt, v_threshold = theta',
                                    v_reset = 0)

and PLIF is the LIF of its layer's trained ``tau = 1 / sigmoid(w)``.
NIR fires at ``v > v_threshold``, we at ``u_H >= theta - v_reset``, so
``theta'`` is the largest float32 below ``theta - v_reset``
(:func:`threshold_below`; 0.99999994 for the default threshold 1): for
float32 potentials the two rules are the same. Ties are common, not rare: a
residual block's output neuron whose conv input is exactly 0 receives
exactly one input spike, 1.0.

NIR 1.0.8 cannot express a soft (subtractive) reset, ``v_reset=None``: its
LIF and IF reset to ``v_reset``. Such neurons, and kinds other than ``lif``,
``if`` and ``plif``, are refused with a :class:`NIRExportError`.
"""

from __future__ import annotations

import numpy as np

from snn_sparse import neurons

EXPORTABLE_KINDS = ("lif", "if", "plif")


class NIRExportError(ValueError):
  """A model, or a part of it, that NIR cannot express; says what to do."""


def import_nir():
  """The ``nir`` module, or an ``ImportError`` that says how to install it."""
  try:
    import nir  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("NIR export needs the nir package: pip install "
                      "'snn-sparse[nir]' (nir==1.0.8).") from e
  return nir


def check_neuron(kind: str, params: neurons.NeuronParams) -> None:
  """Raises a :class:`NIRExportError` unless NIR can express the neuron."""
  if kind not in EXPORTABLE_KINDS:
    raise NIRExportError(
        f"neuron={kind!r}: NIR export knows the kinds {EXPORTABLE_KINDS}; a "
        "registered neuron has no NIR equivalent. Train with one of them.")
  if params.v_reset is None:
    raise NIRExportError(
        "v_reset=None (soft reset, V -= v_threshold after a spike): NIR "
        "1.0.8's LIF and IF reset the potential to v_reset, and no NIR node "
        "subtracts the threshold. Train with a hard reset (v_reset=0.0) to "
        "export.")


def threshold_below(theta: float) -> np.float32:
  """The largest float32 below ``theta``: for a float32 potential ``v``,
  ``v > threshold_below(theta)`` exactly when ``v >= theta``."""
  return np.nextafter(np.float32(theta), np.float32(-np.inf))


def neuron_node(kind: str, params: neurons.NeuronParams, shape, *,
                dt: float, tau=None):
  """The NIR node of a layer of neurons of ``shape`` (per sample, CHW).

  Args:
    kind: ``"lif"``, ``"if"`` or ``"plif"``.
    params: the layer's ``NeuronParams`` (``tau``, ``v_threshold``,
      ``v_reset``, ``decay_input``; the surrogate and ``detach_reset`` only
      shape gradients and are not exported).
    shape: the neurons' shape per sample, e.g. ``(C, H, W)`` or ``(F,)``.
    dt: the time step of one of our steps, in NIR's time unit.
    tau: the layer's time constant when it differs from ``params.tau``
      (PLIF: its trained ``1 / sigmoid(w)``).

  Returns:
    ``nir.LIF`` or ``nir.IF`` with float32 parameter arrays of ``shape``
    (see the module docstring for the mapping).
  """
  nir = import_nir()
  check_neuron(kind, params)
  if not dt > 0:
    raise NIRExportError(f"dt={dt!r}: the NIR time step must be > 0.")
  full = lambda v: np.full(tuple(shape), v, np.float32)
  threshold = full(threshold_below(float(params.v_threshold)
                                   - float(params.v_reset)))
  if kind == "if":
    return nir.IF(r=full(1.0 / dt), v_threshold=threshold, v_reset=full(0.0))
  tau = float(params.tau if tau is None else tau)
  return nir.LIF(tau=full(dt * tau),
                 r=full(1.0 if params.decay_input else tau),
                 v_leak=full(0.0), v_threshold=threshold, v_reset=full(0.0))
