r"""Compare runs: one figure of several workdirs and a table of their best.

  python -m experiments.plot DIR [DIR ...] --out FILE.png \
      [--table FILE.md] [--metric test_accuracy|val_accuracy]

Each DIR is a workdir of ``experiments/main.py``. Workdirs whose
``config.json`` differ only in ``seed`` (and in where the data live, or the
devices they ran on) form one group, drawn as its mean with a band of one
standard deviation; groups are labelled by the fields that tell them apart
(``sparsity.algorithm=rigl``). The figure (``snn_sparse.training.plotting.
plot_comparison``) shows accuracy against connectivity, one point per
iteration (the paper's figure), and accuracy and connectivity per iteration.

The Markdown table (``--table``, default FILE with ``.md``; also printed)
has one row per run at its best iteration (chosen on validation, as the
trainer does), and one mean ± std row per group of seeds.

A run that is still going has no ``summary.json`` yet: its iterations so far
are read from the ``eval`` events of ``metrics.jsonl`` (an incomplete last
line is skipped), and the table says how far it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

import numpy as np

from snn_sparse.training import plotting, reporting

# Config fields that do not change what a run computes, beside the seed.
_NOT_COMPARED = ("seed", "mesh", "data.data_dir", "data.manual_dir")
# Fields that name a group first, when they differ.
_LABEL_FIRST = ["sparsity.algorithm", "sparsity.scope", "data.name",
                "model.name"]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flatten(v, f"{prefix}{k}."))
    return out
  return {prefix.rstrip("."): tree}


def load_run(workdir: str) -> dict:
  """One workdir: its config, per-iteration rows and whether it finished.

  Returns ``{"workdir", "config" (flat {dotted field: value}), "rows",
  "finished", "num_iterations", "selection" ("validation" | "test"),
  "best_iteration"}``. ``rows`` are ``summary.json``'s iterations, or, while
  the run goes on, the ``eval`` events of ``metrics.jsonl``.
  """
  config_path = os.path.join(workdir, "config.json")
  config = {}
  if os.path.exists(config_path):
    with open(config_path) as f:
      config = _flatten(json.load(f))
  summary_path = os.path.join(workdir, "summary.json")
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
    rows, finished = summary["iterations"], True
    selection = summary["selection"]
  elif os.path.exists(metrics_path):
    by_iteration = {e["iteration"]: e for e in
                    reporting.read_events(metrics_path, "eval")}
    rows = [by_iteration[i] for i in sorted(by_iteration)]
    finished = False
    selection = ("validation" if config.get("data.validation_fraction", 0.1)
                 else "test")
  else:
    raise FileNotFoundError(
        f"{workdir} holds neither summary.json nor metrics.jsonl: pass the "
        "--workdir of a run of experiments/main.py.")
  chosen = "val_accuracy" if selection == "validation" else "test_accuracy"
  best = None
  for r in rows:  # the first of equals, as the trainer chooses
    if r.get(chosen) is not None and (
        best is None or r[chosen] > rows[best - 1][chosen]):
      best = r["iteration"]
  return {"workdir": workdir, "config": config, "rows": rows,
          "finished": finished, "num_iterations": config.get("num_iterations"),
          "selection": selection, "best_iteration": best}


def _compared(config: dict) -> dict:
  return {k: v for k, v in config.items()
          if not any(k == f or k.startswith(f + ".") for f in _NOT_COMPARED)}


def group_runs(runs: Sequence[dict]) -> list[dict]:
  """Groups runs whose configs differ only in the seed (see the top).

  Returns ``[{"label", "runs"}]`` in the order of first appearance. A label
  names the config fields whose values differ between groups
  (``sparsity.algorithm=rigl``), or, when there are none, the algorithm or
  the workdir's name.
  """
  groups: dict[str, list[dict]] = {}
  for run in runs:
    key = (json.dumps(_compared(run["config"]), sort_keys=True)
           if run["config"] else run["workdir"])
    groups.setdefault(key, []).append(run)
  configs = [_compared(g[0]["config"]) for g in groups.values()]
  fields = sorted({k for c in configs for k in c})
  differing = sorted(
      (k for k in fields if len({json.dumps(c.get(k)) for c in configs}) > 1),
      key=lambda k: (_LABEL_FIRST.index(k) if k in _LABEL_FIRST
                     else len(_LABEL_FIRST), k))
  out = []
  for members, config in zip(groups.values(), configs):
    if differing and config:
      label = ", ".join(f"{k}={config.get(k)}" for k in differing[:3])
      if len(differing) > 3:
        label += ", ..."
    else:
      label = config.get("sparsity.algorithm") or os.path.basename(
          os.path.normpath(members[0]["workdir"]))
    running = [r for r in members if not r["finished"]]
    if running:
      label += f" ({len(running)} running)"
    out.append({"label": label, "runs": members})
  return out


def _best_row(run: dict) -> dict | None:
  best = run["best_iteration"]
  return run["rows"][best - 1] if best else None


def _status(run: dict) -> str:
  done = len(run["rows"])
  if run["finished"]:
    return f"done, {done} iterations"
  total = run["num_iterations"] or "?"
  return f"running, {done}/{total} iterations"


_COLUMNS = (("val acc (%)", "val_accuracy", 100.0, ".2f"),
            ("test acc (%)", "test_accuracy", 100.0, ".2f"),
            ("connectivity (%)", "connectivity", 100.0, ".2f"),
            ("SOPs", "sops", 1.0, ".4g"),
            ("energy (µJ)", "energy_uj", 1.0, ".4g"))


def markdown_table(groups: Sequence[dict]) -> str:
  """Each run's best iteration, and each group of seeds' mean ± std."""
  header = (["run", "group", "status", "best iteration"] +
            [c[0] for c in _COLUMNS])
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|"]
  for group in groups:
    for run in group["runs"]:
      row = _best_row(run)
      cells = [run["workdir"], group["label"], _status(run),
               str(run["best_iteration"] or "-")]
      for _, key, scale, fmt in _COLUMNS:
        value = None if row is None else row.get(key)
        cells.append("-" if value is None else format(scale * value, fmt))
      lines.append("| " + " | ".join(cells) + " |")
    if len(group["runs"]) > 1:
      rows = [r for r in map(_best_row, group["runs"]) if r is not None]
      cells = [f"**mean ± std of {len(group['runs'])}**", group["label"], "",
               ""]
      for _, key, scale, fmt in _COLUMNS:
        values = [scale * r[key] for r in rows if r.get(key) is not None]
        cells.append(f"{format(np.mean(values), fmt)} ± "
                     f"{format(np.std(values), fmt)}" if values else "-")
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def compare(workdirs: Sequence[str], out: str, table: str | None = None,
            metric: str = "test_accuracy") -> str:
  """Writes the figure to ``out`` and the table to ``table`` (default:
  ``out`` with ``.md``); returns the table."""
  groups = group_runs([load_run(w) for w in workdirs])
  if os.path.dirname(out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
  plotting.plot_comparison(
      [{"label": g["label"], "runs": [r["rows"] for r in g["runs"]]}
       for g in groups], out, metric=metric)
  text = markdown_table(groups)
  table = table or os.path.splitext(out)[0] + ".md"
  with open(table, "w") as f:
    f.write(text)
  return text


def main(argv: Sequence[str] | None = None) -> int:
  """The command line (see the top); returns the exit status."""
  parser = argparse.ArgumentParser(
      prog="python -m experiments.plot", description=__doc__.split("\n")[0],
      epilog="Workdirs that differ only in the seed are drawn as mean ± std.")
  parser.add_argument("workdirs", nargs="+", metavar="DIR",
                      help="workdirs of experiments/main.py")
  parser.add_argument("--out", required=True, metavar="FILE",
                      help="where to write the figure (PNG)")
  parser.add_argument("--table", metavar="FILE",
                      help="where to write the Markdown table (default: "
                      "--out with the extension .md)")
  parser.add_argument("--metric", default="test_accuracy",
                      choices=["test_accuracy", "val_accuracy"],
                      help="the accuracy drawn (default: %(default)s)")
  args = parser.parse_args(argv)
  table = args.table or os.path.splitext(args.out)[0] + ".md"
  try:
    text = compare(args.workdirs, args.out, table, args.metric)
  except FileNotFoundError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(text, end="")
  print(f"Wrote {args.out} and {table}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
