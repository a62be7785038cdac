"""Per-iteration trajectories of a study's arms, and the Gaussian reference.

Per arm and iteration, the mean over the finished seeds (from each run's
``summary.json`` rows) of the connectivity, the PQ index averaged over the
prunable layers, the fraction of the iteration's grown synapses that its net
prune kept (``grown_survival``; only iterations that end in a net prune), and
the test accuracy.

The Gaussian reference is the trajectory the PQ rule would follow if every
layer's active weights stayed normally distributed: for ``w ~ N(0, s^2)``,
``E|w|^s = 2^(s/2) Gamma((s+1)/2) / sqrt(pi)`` and the PQ index is
``I = 1 - (E|w|^p)^(1/p) / (E|w|^q)^(1/q)`` (0.1528 at p = 0.5, q = 1), the
same for every layer and iteration; each net prune then keeps ``1 - c(I)``
of the active synapses (real-valued, without the per-unit floor).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from snn_sparse.sparsity import pq

# (key of the per-iteration record, title, scale, format)
SERIES = (
    ("connectivity", "connectivity (%)", 100.0, ".1f"),
    ("pq_index", "PQ index, mean of layers", 1.0, ".3f"),
    ("grown_survival", "grown synapses kept by the net prune (%)", 100.0,
     ".0f"),
    ("test_accuracy", "test acc. (%)", 100.0, ".2f"),
)


def gaussian_index(p: float = 0.5, q: float = 1.0) -> float:
  """The PQ index of normally distributed weights (any scale, any count)."""
  def moment(s):  # E|w|^s for w ~ N(0, 1)
    return 2 ** (s / 2) * math.gamma((s + 1) / 2) / math.sqrt(math.pi)
  return 1.0 - moment(p) ** (1 / p) / moment(q) ** (1 / q)


def gaussian_trajectory(start: float, iterations: int,
                        sparsity: Mapping[str, Any]) -> dict:
  """Connectivity per iteration if the weights stayed Gaussian.

  Args:
    start: the connectivity of iteration 1 (before its net prune).
    iterations: how many iterations; a net prune ends each but the last.
    sparsity: the run's ``config["sparsity"]`` (``p``, ``q``, ``alpha_r``,
      ``gamma``, ``beta``).

  Returns ``{"index", "ratio", "connectivity": [start, start * (1 - c), ...]}``.
  """
  p, q = sparsity["p"], sparsity["q"]
  index = gaussian_index(p, q)
  ratio = float(pq.ratio_from_index(
      index, p=p, q=q, alpha_r=sparsity["alpha_r"], gamma=sparsity["gamma"],
      beta=sparsity["beta"]))
  return {"index": index, "ratio": ratio,
          "connectivity": [start * (1 - ratio) ** k
                           for k in range(iterations)]}


def iteration_record(row: Mapping[str, Any]) -> dict:
  """One ``summary.json`` iteration row as the :data:`SERIES` values
  (``None`` where the row has no such value)."""
  layers = row.get("pq_index_per_layer") or {}
  return {"connectivity": row.get("connectivity"),
          "pq_index": float(np.mean(list(layers.values()))) if layers else None,
          "grown_survival": row.get("grown_survival"),
          "test_accuracy": row.get("test_accuracy")}


def mean_series(per_run: Sequence[Sequence[Mapping[str, Any]]]) -> dict:
  """``{key: [mean over runs at iteration i, ...]}`` over the runs' records
  (:func:`iteration_record`); ``None`` where no run has that value."""
  length = max((len(records) for records in per_run), default=0)
  out = {}
  for key, *_ in SERIES:
    out[key] = []
    for i in range(length):
      values = [r[i][key] for r in per_run
                if i < len(r) and r[i][key] is not None]
      out[key].append(float(np.mean(values)) if values else None)
  return out


def _joined(values: Sequence[float | None], scale: float, fmt: str) -> str:
  if not any(v is not None for v in values):
    return "-"
  return " → ".join("·" if v is None else format(scale * v, fmt)
                    for v in values)


def markdown(arms: Sequence[Mapping[str, Any]],
             gaussian: Mapping[str, Any] | None) -> list[str]:
  """The "Per iteration" section of ``results.md``: one row per arm that has
  finished a seed (``arm["trajectory"]``), iterations left to right, and the
  Gaussian reference under them."""
  lines = ["## Per iteration", "",
           "Mean over the finished seeds, iteration 1 → last. Connectivity "
           "and test accuracy as evaluated after each iteration's training, "
           "before its net prune; the PQ index is the mean over the prunable "
           "layers of each layer's index over its active weights at that "
           "point; a `·` is an iteration without that value (no net prune "
           "follows the last iteration).", "",
           "| arm | " + " | ".join(title for _, title, *_ in SERIES) + " |",
           "|---|" + "---|" * len(SERIES)]
  for arm in arms:
    series = arm.get("trajectory")
    if not series or not series["connectivity"]:
      continue
    cells = [_joined(series[key], scale, fmt) for key, _, scale, fmt in SERIES]
    lines.append(f"| `{arm['name']}` | " + " | ".join(cells) + " |")
  if gaussian:
    lines.append(
        f"| Gaussian weights (I = {gaussian['index']:.4f}, c = "
        f"{gaussian['ratio']:.4f}) | "
        + _joined(gaussian["connectivity"], 100.0, ".1f")
        + f" | {gaussian['index']:.3f} | - | - |")
  return lines + [""]
