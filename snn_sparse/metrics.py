"""Evaluation metrics: accuracy, firing rates, synaptic operations, energy.

The layers sow per-sample counts into Flax's ``"intermediates"`` collection
(``layers.Conv``/``layers.Dense``: ``"sops"`` or ``"macs"`` ``[T*B]``;
``layers.SpikingNeuron``: ``"firing_rate"`` ``[T, B]``). :func:`batch_sums`
turns one batch's intermediates into masked sums, :func:`finalize` divides
accumulated sums by the number of real examples.

SOPs per sample (METHOD.md §4) are summed over layers and time steps. The
convention: **one synaptic operation is one input spike crossing one active
(non-zero, unmasked) synapse.** A layer counts, for each input, the spikes
(events) it stands for times its active fan-out, ``|x| * spikes_per_unit *
fan_out`` (``layers.Conv``/``layers.Dense``), which is exact for:

* binary spikes (0/1): ``spikes_per_unit = 1``;
* event-count frames (the first layer of event models, ``analog_input=False``):
  a count of n is n events, ``spikes_per_unit = 1``;
* average-pooled spikes: the count equals counting the spikes before the
  pooling, each of which reaches the pooled position and crosses every active
  synapse leaving it: ``spikes_per_unit`` is the window area (4 for a 2x2
  pool, H*W for a global average pool), set by the models where they pool.
  Max-pooled spikes are 0/1 and count once.

Non-integer inputs to a spiking layer (frames resized by interpolation) count
as fractional events, negative ones (none in this code base) by magnitude.
The layer that reads an analog input (the image; ``analog_input=True``)
counts MACs instead, separately: non-zero inputs x active fan-out. Energy
uses the 45 nm figures common in the SNN literature: 0.9 pJ per SOP and 4.6 pJ
per MAC.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from snn_sparse.sparsity.masks import path_str

PJ_PER_SOP = 0.9
PJ_PER_MAC = 4.6
COUNTED = ("sops", "macs", "firing_rate")


def batch_sums(intermediates: Mapping, time_steps: int,
               weights: jax.Array) -> dict[str, dict[str, jax.Array]]:
  """Masked per-layer sums of one batch's sown metrics (jit-friendly).

  Args:
    intermediates: the ``"intermediates"`` collection of ``model.apply``.
    time_steps: T, to unfold the ``[T*B]`` op counts.
    weights: ``[B]``, 1 for real examples and 0 for padding.

  Returns:
    ``{"sops": {layer: sum}, "macs": {...}, "firing_rate": {...}}``: per
    layer (its module path, e.g. ``"BasicBlock_0/Conv_1"``), the sum over real
    examples of the per-sample value (ops summed over T, rates averaged
    over T).
  """
  out = {k: {} for k in COUNTED}
  for path, value in jax.tree_util.tree_flatten_with_path(intermediates)[0]:
    parts = path_str(path).split("/")
    kind, layer = parts[-2], "/".join(parts[:-2])
    if kind not in COUNTED:
      continue
    per_step = value.reshape((time_steps, -1))  # [T, B]
    per_sample = per_step.mean(0) if kind == "firing_rate" else per_step.sum(0)
    out[kind][layer] = jnp.sum(per_sample * weights)
  return out


def accumulate(total: dict | None, batch: Mapping) -> dict:
  """Adds a pytree of sums ``batch`` to ``total`` (``None`` starts at 0)."""
  batch = jax.tree.map(np.asarray, jax.device_get(batch))
  if total is None:
    return jax.tree.map(lambda x: np.asarray(x, np.float64), batch)
  return jax.tree.map(lambda a, b: a + b, total, batch)


def energy_uj(sops: float, macs: float) -> float:
  """Estimated energy in microjoules: 0.9 pJ per SOP + 4.6 pJ per MAC."""
  return (PJ_PER_SOP * sops + PJ_PER_MAC * macs) * 1e-6


def finalize(total: Mapping[str, Any]) -> dict[str, Any]:
  """Turns accumulated eval sums into per-example metrics.

  ``total`` holds ``count``, ``correct``, ``loss`` (sums over real examples)
  and the per-layer sums of :func:`batch_sums`. Returns accuracy, loss,
  per-layer firing rate, per-layer and total SOPs and MACs per sample, and
  the energy estimate in microjoules per sample.
  """
  n = max(float(total["count"]), 1.0)
  per_layer = {k: {layer: float(v) / n for layer, v in total[k].items()}
               for k in COUNTED}
  sops = sum(per_layer["sops"].values())
  macs = sum(per_layer["macs"].values())
  return {
      "examples": int(total["count"]),
      "accuracy": float(total["correct"]) / n,
      "loss": float(total["loss"]) / n,
      "sops": sops,
      "macs": macs,
      "energy_uj": energy_uj(sops, macs),
      "sops_per_layer": per_layer["sops"],
      "macs_per_layer": per_layer["macs"],
      "firing_rate": per_layer["firing_rate"],
  }
