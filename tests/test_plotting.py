"""The figures: one run's summary.png and the comparison of several runs."""

import matplotlib
from matplotlib.collections import PolyCollection
import numpy as np

from snn_sparse.training import plotting

LAYERS = ("Conv_0/kernel", "Dense_0/kernel")


def _rows(n=4, seed=0, validation=True):
  rng = np.random.default_rng(seed)
  rows = []
  for i in range(1, n + 1):
    rows.append({
        "iteration": i, "step": 20 * i,
        "val_accuracy": 0.9 + 0.01 * i if validation else None,
        "test_accuracy": 0.9 + 0.01 * rng.random(),
        "connectivity": 0.5 * 0.8 ** (i - 1),
        "connectivity_per_layer": {k: 0.6 * 0.8 ** i for k in LAYERS},
        "pq_index_per_layer": {k: 0.1 + 0.01 * i for k in LAYERS},
        "firing_rate_per_layer": {"SpikingNeuron_0": 0.2},
        "sops": 1e5 / i, "energy_uj": 0.4 / i})
  return rows


def _summary(**kw):
  return {"model": "convnet", "dataset": "digits", "algorithm": "pq_dst",
          "scope": "layer", "selection": "validation", "best_iteration": 3,
          "iterations": _rows(**kw)}


def test_summary_figure_has_its_panels(tmp_path):
  backend = matplotlib.get_backend()
  path = tmp_path / "summary.png"
  fig = plotting.plot_summary(_summary(), str(path))
  assert path.stat().st_size > 20_000
  assert matplotlib.get_backend() == backend  # notebooks keep theirs
  titles = [ax.get_title() for ax in fig.axes]
  for panel in ("(a) accuracy and connectivity", "(b) density per layer",
                "(c) PQ index per layer", "(d) accuracy against SOPs",
                "(e) accuracy against energy"):
    assert panel in titles
  for ax in fig.axes:
    if ax.get_title():  # every panel: both axes labelled, with units
      assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
  by_title = {ax.get_title(): ax for ax in fig.axes}
  assert "(%)" in by_title["(a) accuracy and connectivity"].get_ylabel()
  assert "µJ" in by_title["(e) accuracy against energy"].get_xlabel()
  # One line per layer, named without "/kernel".
  density = by_title["(b) density per layer"]
  assert [l.get_label() for l in density.get_lines()
          if l.get_marker() == "o"] == ["Conv_0", "Dense_0"]
  # The best iteration: a star in (a), (d), (e); a dotted line elsewhere.
  for title in ("(a) accuracy and connectivity", "(d) accuracy against SOPs",
                "(e) accuracy against energy"):
    stars = [l for l in by_title[title].get_lines() if l.get_marker() == "*"]
    assert len(stars) == 1 and "best (iteration 3" in stars[0].get_label()
  (x, _), = [l.get_xydata()[0] for l in density.get_lines()
             if l.get_linestyle() == ":"]
  assert x == 3
  assert "best iteration 3" in fig.get_suptitle()


def test_summary_figure_without_validation_or_masks():
  rows = _rows(n=2, validation=False)
  for r in rows:
    r.pop("pq_index_per_layer")
  fig = plotting.plot_summary({"iterations": rows, "best_iteration": 1,
                               "selection": "test"})
  assert len(fig.axes) >= 6


def test_comparison_draws_bands_for_seeds(tmp_path):
  path = tmp_path / "compare.png"
  fig = plotting.plot_comparison(
      [{"label": "pq_dst", "runs": [_rows(seed=0), _rows(seed=1)]},
       {"label": "set", "runs": [_rows(n=2, seed=2)]}], str(path))
  assert path.stat().st_size > 20_000
  ax_ac, ax_acc, ax_conn = fig.axes
  assert "connectivity" in ax_ac.get_xlabel() and "%" in ax_ac.get_ylabel()
  assert ax_acc.get_xlabel() == "iteration" == ax_conn.get_xlabel()
  # A mean ± std band for the group of two seeds, none for the single run.
  bands = [c for c in ax_acc.collections if isinstance(c, PolyCollection)]
  assert len(bands) == 1
  means = [l for l in ax_acc.get_lines() if l.get_label().startswith("pq")]
  expected = np.mean([[100 * r["test_accuracy"] for r in _rows(seed=s)]
                      for s in (0, 1)], axis=0)
  np.testing.assert_allclose(means[0].get_ydata(), expected)
  assert "mean ± std of 2 seeds" in means[0].get_label()
  # Accuracy against connectivity: x is the mean connectivity in %.
  np.testing.assert_allclose(ax_ac.get_lines()[0].get_xdata(),
                             [100 * r["connectivity"] for r in _rows()])


def test_comparison_draws_a_reference_trajectory():
  reference = {"label": "Gaussian weights", "connectivity": [0.5, 0.4, 0.32]}
  fig = plotting.plot_comparison(
      [{"label": "pq_dst", "runs": [_rows(seed=0), _rows(seed=1)]}],
      reference=reference)
  ax_conn = fig.axes[2]
  line, = [l for l in ax_conn.get_lines() if l.get_linestyle() == "--"]
  assert line.get_label() == "Gaussian weights"
  np.testing.assert_allclose(line.get_xydata(),
                             [[1, 50.0], [2, 40.0], [3, 32.0]])
  assert "Gaussian weights" in [t.get_text() for t in fig.legends[0].texts]
