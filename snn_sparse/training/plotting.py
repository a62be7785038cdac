"""Figures of runs: one run's ``summary.png``, and several runs compared.

Both take the per-iteration rows of ``summary.json`` (or the ``eval`` events
of ``metrics.jsonl``, which carry the same fields) and draw with
matplotlib's object API, without pyplot: no global backend is chosen, so a
notebook that imports this module keeps its inline figures. Each function
returns the ``Figure`` and, given a ``path``, saves it there as PNG.
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

_BEST = dict(marker="*", ms=15, color="gold", mec="k", ls="none", zorder=5)


def _layer_name(path: str) -> str:
  """``"Block_1/Conv_0/kernel"`` -> ``"Block_1/Conv_0"``."""
  return path[:-len("/kernel")] if path.endswith("/kernel") else path


def _natural(name: str):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _layers(rows: Sequence[Mapping], key: str) -> list[str]:
  names = {k for r in rows for k in (r.get(key) or {})}
  return sorted(names, key=_natural)


def _layer_colors(n: int):
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  cmap = colormaps["viridis"]
  return [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]


def _per_layer(ax, rows, key, scale, ylabel, title, best):
  """One line per layer of ``row[key]`` (a dict) against iteration."""
  names = _layers(rows, key)
  if not names:
    ax.text(0.5, 0.5, "no masked layers", ha="center", va="center",
            transform=ax.transAxes, color="0.4")
  its = [r["iteration"] for r in rows]
  for name, color in zip(names, _layer_colors(len(names))):
    ys = [scale * r[key][name] if name in (r.get(key) or {}) else np.nan
          for r in rows]
    ax.plot(its, ys, "o-", ms=3, lw=1.2, color=color, label=_layer_name(name))
  if names:
    ax.legend(fontsize=6, ncol=max(1, math.ceil(len(names) / 6)),
              frameon=False, loc="best")
  _mark_best_iteration(ax, best)
  _iteration_axis(ax, its)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)


def _iteration_axis(ax, its=()):
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  ax.set_xlabel("iteration")
  if 0 < len(its) <= 20:
    ax.set_xticks(its)
  else:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.grid(alpha=0.3)


def _mark_best_iteration(ax, best):
  if best:
    ax.axvline(best, color="goldenrod", ls=":", lw=1.5, zorder=0)


def _cost_panel(ax, rows, key, scale, xlabel, title, best):
  """Test accuracy against a per-sample cost, one point per iteration."""
  xs = [scale * r[key] if r.get(key) is not None else np.nan for r in rows]
  ys = [100.0 * r["test_accuracy"] for r in rows]
  ax.plot(xs, ys, "-", color="0.6", lw=1, zorder=1)
  points = ax.scatter(xs, ys, c=[r["iteration"] for r in rows], cmap="plasma",
                      s=30, zorder=2, edgecolors="k", linewidths=0.4)
  for r, x, y in zip(rows, xs, ys):
    ax.annotate(str(r["iteration"]), (x, y), textcoords="offset points",
                xytext=(4, 4), fontsize=7)
  if best:
    ax.plot([xs[best - 1]], [ys[best - 1]], **_BEST,
            label=f"best (iteration {best})")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
  ax.set_xlabel(xlabel)
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  return points


def plot_summary(summary: Mapping, path: str | None = None) -> Figure:
  """The figure of one run: ``summary`` is the dict of ``summary.json``.

  Six panels, each with the best iteration marked (a dotted line, or a
  star): (a) validation and test accuracy (%) and connectivity (% of the
  prunable synapses) per iteration; (b) each masked layer's density (%) per
  iteration; (c) each masked layer's PQ index (layer scope) per iteration;
  (d) test accuracy against synaptic operations per sample and (e) against
  energy per sample (µJ), one point per iteration; (f) each spiking layer's
  firing rate per iteration. Saved as PNG at ``path`` when given.
  """
  rows = list(summary["iterations"])
  best = summary.get("best_iteration")
  its = [r["iteration"] for r in rows]
  fig = Figure(figsize=(15, 8.5), dpi=100)
  axes = fig.subplots(2, 3)

  # (a) Accuracy and connectivity.
  ax = axes[0, 0]
  acc = [100.0 * r["test_accuracy"] for r in rows]
  ax.plot(its, acc, "o-", color="tab:blue", label="test accuracy")
  if any(r.get("val_accuracy") is not None for r in rows):
    ax.plot(its, [np.nan if r.get("val_accuracy") is None
                  else 100.0 * r["val_accuracy"] for r in rows],
            "^:", color="tab:cyan", label="validation accuracy")
  ax.set_ylabel("accuracy (%)", color="tab:blue")
  ax2 = ax.twinx()
  ax2.plot(its, [100.0 * r["connectivity"] for r in rows], "s--",
           color="tab:red", label="connectivity")
  ax2.set_ylabel("connectivity (% of prunable synapses)", color="tab:red")
  if best:
    chosen = "val_accuracy" if summary.get("selection") == "validation" \
        else "test_accuracy"
    value = rows[best - 1].get(chosen)
    if value is not None:
      ax.plot([best], [100.0 * value], **_BEST,
              label=f"best (iteration {best}, on {summary.get('selection')})")
  _mark_best_iteration(ax, best)
  _iteration_axis(ax, its)
  h1, l1 = ax.get_legend_handles_labels()
  h2, l2 = ax2.get_legend_handles_labels()
  ax.legend(h1 + h2, l1 + l2, fontsize=7, frameon=False, loc="lower left")
  ax.set_title("(a) accuracy and connectivity", fontsize=10)

  # (b), (c): per-layer density and PQ index.
  _per_layer(axes[0, 1], rows, "connectivity_per_layer", 100.0,
             "density (% of the layer's synapses)",
             "(b) density per layer", best)
  _per_layer(axes[0, 2], rows, "pq_index_per_layer", 1.0,
             "PQ index (layer scope, unitless)",
             "(c) PQ index per layer", best)

  # (d), (e): cost against accuracy.
  _cost_panel(axes[1, 0], rows, "sops", 1.0,
              "synaptic operations per sample (SOPs)",
              "(d) accuracy against SOPs", best)
  points = _cost_panel(axes[1, 1], rows, "energy_uj", 1.0,
                       "energy per sample (µJ; 0.9 pJ/SOP + 4.6 pJ/MAC)",
                       "(e) accuracy against energy", best)
  fig.colorbar(points, ax=axes[1, 1], label="iteration", fraction=0.05)

  # (f): firing rates.
  _per_layer(axes[1, 2], rows, "firing_rate_per_layer", 1.0,
             "firing rate (spikes per neuron per time step)",
             "(f) firing rate per spiking layer (test split)", best)

  title = f"{summary.get('model')} on {summary.get('dataset')}: " \
          f"{summary.get('algorithm')}"
  if summary.get("scope"):
    title += f" ({summary['scope']} scope)"
  if best:
    r = rows[best - 1]
    title += (f"; best iteration {best}: test accuracy "
              f"{100 * r['test_accuracy']:.2f}% at connectivity "
              f"{100 * r['connectivity']:.1f}%")
  fig.suptitle(title, fontsize=12)
  fig.tight_layout()
  if path:
    fig.savefig(path)
  return fig


def _stats(runs: Sequence[Sequence[Mapping]], key: str, scale: float):
  """Per iteration: (iterations, mean, std, count) of ``key`` over runs."""
  by_it: dict[int, list[float]] = {}
  for rows in runs:
    for r in rows:
      if r.get(key) is not None:
        by_it.setdefault(r["iteration"], []).append(scale * r[key])
  its = sorted(by_it)
  values = [np.asarray(by_it[i]) for i in its]
  return (np.asarray(its), np.asarray([v.mean() for v in values]),
          np.asarray([v.std() for v in values]),
          np.asarray([v.size for v in values]))


def plot_comparison(groups: Sequence[Mapping], path: str | None = None,
                    metric: str = "test_accuracy",
                    reference: Mapping | None = None) -> Figure:
  """Several runs on one figure.

  ``groups``: each ``{"label": str, "runs": [rows, ...]}``, where ``rows``
  are one run's per-iteration rows; the runs of a group (its seeds) are
  drawn as their mean with a band of one standard deviation, a group of one
  run as a plain line. ``metric``: the accuracy drawn (``test_accuracy`` or
  ``val_accuracy``). Three panels: (a) accuracy against connectivity, one
  point per iteration (the first and last iterations numbered); (b)
  accuracy and (c) connectivity per iteration. A star marks each group's
  best iteration (its highest mean validation accuracy, or ``metric`` when
  there is no validation split). ``reference``: ``{"label", "connectivity":
  [fraction per iteration, from 1]}``, a trajectory drawn dashed in (c) (a
  study's Gaussian-weights prediction). Saved as PNG at ``path`` when given.
  """
  fig = Figure(figsize=(16, 5.2), dpi=100)
  ax_ac, ax_acc, ax_conn = fig.subplots(1, 3)
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  # tab10; tab20 when more groups than tab10 has colours.
  palette = colormaps["tab10" if len(groups) <= 10 else "tab20"]
  name = "test" if metric == "test_accuracy" else "validation"
  for g, group in enumerate(groups):
    color = palette(g % palette.N)
    runs = group["runs"]
    n = len(runs)
    label = group["label"] + (f" (mean ± std of {n} seeds)" if n > 1 else "")
    its, acc, acc_sd, _ = _stats(runs, metric, 100.0)
    conn_its, conn, conn_sd, _ = _stats(runs, "connectivity", 100.0)
    if not its.size:
      continue
    common = np.intersect1d(its, conn_its)
    a = acc[np.isin(its, common)]
    a_sd = acc_sd[np.isin(its, common)]
    c = conn[np.isin(conn_its, common)]
    c_sd = conn_sd[np.isin(conn_its, common)]
    ax_ac.plot(c, a, "o-", color=color, ms=4, label=label)
    if n > 1:
      ax_ac.errorbar(c, a, xerr=c_sd, yerr=a_sd, fmt="none", ecolor=color,
                     alpha=0.5, capsize=2)
      if np.unique(c).size > 1:
        ax_ac.fill_between(c, a - a_sd, a + a_sd, color=color, alpha=0.15,
                           lw=0)
    for i in (0, len(common) - 1) if len(common) > 1 else (0,):
      ax_ac.annotate(str(common[i]), (c[i], a[i]), textcoords="offset points",
                     xytext=(4, 4), fontsize=7, color=color)
    for ax, x, y, sd in ((ax_acc, its, acc, acc_sd),
                         (ax_conn, conn_its, conn, conn_sd)):
      ax.plot(x, y, "o-", color=color, ms=4, label=label)
      if n > 1:
        ax.fill_between(x, y - sd, y + sd, color=color, alpha=0.2, lw=0)
    # The best iteration of the mean curve.
    chooser = "val_accuracy" if all(
        r.get("val_accuracy") is not None for rows in runs for r in rows
    ) else metric
    sel_its, sel, _, _ = _stats(runs, chooser, 1.0)
    if sel.size:
      best = int(sel_its[int(np.argmax(sel))])
      if best in common:
        k = int(np.where(common == best)[0][0])
        ax_ac.plot([c[k]], [a[k]], **_BEST)
      if best in its:
        ax_acc.plot([best], [acc[its == best][0]], **_BEST)
  reference_line = None
  if reference:
    values = 100.0 * np.asarray(reference["connectivity"])
    reference_line, = ax_conn.plot(np.arange(1, values.size + 1), values,
                                   "--", color="black", lw=1,
                                   label=reference["label"])
  ax_ac.set_xlabel("connectivity (% of prunable synapses)")
  ax_ac.set_ylabel(f"{name} accuracy (%)")
  ax_ac.set_title("(a) accuracy against connectivity, per iteration",
                  fontsize=10)
  ax_acc.set_ylabel(f"{name} accuracy (%)")
  ax_acc.set_title("(b) accuracy per iteration", fontsize=10)
  ax_conn.set_ylabel("connectivity (% of prunable synapses)")
  ax_conn.set_title("(c) connectivity per iteration", fontsize=10)
  ax_ac.grid(alpha=0.3)
  _iteration_axis(ax_acc)
  _iteration_axis(ax_conn)
  handles, labels = ax_acc.get_legend_handles_labels()
  if reference_line is not None:
    handles.append(reference_line)
    labels.append(reference["label"])
  handles.append(ax_acc.plot([], [], **_BEST)[0])
  labels.append("best iteration (highest mean validation accuracy)")
  fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3),
             fontsize=8, frameon=False)
  fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(labels) // 3), 1, 1))
  if path:
    fig.savefig(path)
  return fig
