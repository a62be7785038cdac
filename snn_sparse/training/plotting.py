"""Plots of a run's summary (needs the ``[viz]`` extra: matplotlib)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def plot_summary(summary: dict, path: str) -> None:
  """Accuracy and connectivity against iteration (the paper's Fig. 2/3).

  ``summary`` is the dict of ``summary.json``; the figure is saved as PNG at
  ``path``. Test accuracy, validation accuracy (when there is a validation
  split) and connectivity; the best iteration is marked with a star on the
  test curve.
  """
  rows = summary["iterations"]
  its = [r["iteration"] for r in rows]
  acc = [100.0 * r["test_accuracy"] for r in rows]
  conn = [100.0 * r["connectivity"] for r in rows]
  fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
  ax.plot(its, acc, "o-", color="tab:blue", label="test accuracy")
  if all(r.get("val_accuracy") is not None for r in rows):
    ax.plot(its, [100.0 * r["val_accuracy"] for r in rows], "^:",
            color="tab:cyan", label="validation accuracy")
  ax.set_xlabel("iteration")
  ax.set_ylabel("accuracy (%)", color="tab:blue")
  ax2 = ax.twinx()
  ax2.plot(its, conn, "s--", color="tab:red", label="connectivity")
  ax2.set_ylabel("connectivity (%)", color="tab:red")
  best = summary.get("best_iteration")
  if best:
    ax.plot([best], [acc[best - 1]], "*", ms=16, color="gold", mec="k",
            label=f"best (iteration {best})")
  ax.set_xticks(its)
  ax.grid(alpha=0.3)
  title = f"{summary.get('model')} on {summary.get('dataset')}: " \
          f"{summary.get('algorithm')}"
  if summary.get("scope"):
    title += f" ({summary['scope']})"
  ax.set_title(title, fontsize=10)
  lines = ax.get_legend_handles_labels()
  lines2 = ax2.get_legend_handles_labels()
  ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper center",
            bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
