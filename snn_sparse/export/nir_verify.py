"""Checks an exported NIR graph against the JAX model, spike for spike.

``compare(graph, model, variables, x)`` runs the model (eval mode) and the
NumPy reference simulator (``nir_reference``) of ``graph`` on the same
input, and counts, per neuron layer, the spikes on which they differ, and
the largest difference of the per-step logits.
"""

from __future__ import annotations

import jax
import numpy as np

from snn_sparse import layers


def model_spikes(model, variables, x) -> tuple[np.ndarray, dict]:
  """Per-step logits ``[T, B, K]`` and every neuron layer's spikes.

  ``x`` is the model input ``[T, B, H, W, C]``. Spikes are keyed by the
  layer's module path joined by ``.`` (the NIR node names of ``to_nir``),
  in NIR's layout: ``[T, B, C, H, W]`` or ``[T, B, F]``.
  """
  capture = lambda mdl, method: (isinstance(mdl, layers.SpikingNeuron)
                                 and method == "__call__")
  logits, state = jax.jit(lambda v, x: model.apply(
      v, x, train=False, capture_intermediates=capture,
      mutable=["intermediates"]))(variables, x)
  spikes = {}
  flat = jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]
  for path, value in flat:
    keys = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
    if keys[-1] != "__call__":  # values the layers sow (SOPs, rates)
      continue
    name = ".".join(keys[:-1])
    s = np.asarray(value)
    spikes[name] = s.transpose(0, 1, 4, 2, 3) if s.ndim == 5 else s
  return np.asarray(logits), spikes


def to_nir_input(x) -> np.ndarray:
  """The model input ``[T, B, H, W, C]`` as NIR input ``[T, B, C, H, W]``."""
  return np.asarray(x).transpose(0, 1, 4, 2, 3)


def compare(graph, model, variables, x, *, dt: float | None = None) -> dict:
  """Agreement of ``graph`` (reference simulator) with ``model``.

  Args:
    graph: the exported (e.g. read back) ``nir.NIRGraph``.
    model, variables: the model and its variables with the masks applied
      (``params * masks``), as exported.
    x: model input ``[T, B, H, W, C]``.
    dt: the graph's time step (default: its metadata).

  Returns:
    ``{"examples", "spikes", "spike_mismatches", "layers": {name:
    {"spikes", "mismatches"}}, "max_abs_logit_diff",
    "prediction_agreement"}``: ``spikes`` counts the model's spikes,
    ``mismatches`` the (neuron, step, example) entries where the two differ,
    and predictions are the argmax of the time-averaged logits.
  """
  from snn_sparse.export import nir_reference  # pylint: disable=g-import-not-at-top
  logits, spikes = model_spikes(model, variables, x)
  out, record = nir_reference.simulate(graph, to_nir_input(x), dt=dt,
                                       record=True)
  per_layer = {}
  for name, ours in spikes.items():
    if name not in record:
      raise ValueError(f"The graph has no node {name!r} for the model's "
                       f"neuron layer {name}.")
    theirs = record[name]
    per_layer[name] = {"spikes": int(ours.sum()),
                       "mismatches": int(np.sum(theirs != ours))}
  agree = np.argmax(out.mean(0), -1) == np.argmax(logits.mean(0), -1)
  return {"examples": int(x.shape[1]),
          "spikes": sum(v["spikes"] for v in per_layer.values()),
          "spike_mismatches": sum(v["mismatches"]
                                  for v in per_layer.values()),
          "layers": per_layer,
          "max_abs_logit_diff": float(np.max(np.abs(out - logits))),
          "prediction_agreement": float(agree.mean())}
