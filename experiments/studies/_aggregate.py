"""A study's results: per arm, mean ± std over seeds, a paired comparison,
the table and the figure.

Per run, from its ``summary.json``: the test accuracy, SOPs per sample and
energy of the best iteration (its ``"best"`` row, chosen on validation), the
connectivity of that row, and the connectivity and test accuracy of the last
iteration (the final density, which the study equalises). Per arm: the
mean and the sample standard deviation (``ddof=1``; none for one seed) over
its finished seeds. The paired comparison takes the seeds that both arms
finished: per seed the difference ``arm - other`` of the best-iteration test
accuracy (and of the last iteration's), their mean and standard deviation,
and whether ``|mean|`` exceeds that standard deviation. The compute of a
run is the wall time of its invocations (``DIR/ARM/seedK.timing.json``,
written by the runner). The per-iteration means and the Gaussian reference
come from :mod:`experiments.studies._trajectories`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from experiments.studies import _trajectories

# (key in a run's record, column title, scale, format)
COLUMNS = (
    ("test_accuracy", "test acc. at best val. iteration (%)", 100.0, ".2f"),
    ("final_test_accuracy", "test acc. at last iteration (%)", 100.0, ".2f"),
    ("final_connectivity", "final connectivity (%)", 100.0, ".2f"),
    ("best_connectivity", "connectivity at best (%)", 100.0, ".2f"),
    ("sops", "SOPs per sample at best (M)", 1e-6, ".3f"),
    ("energy_uj", "energy at best (µJ)", 1.0, ".3f"),
)
PAIRED_METRICS = ("test_accuracy", "final_test_accuracy")


def read_run(workdir: str) -> dict | None:
  """One finished run's figures (see the top), or ``None`` if it has no
  ``summary.json``."""
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    summary = json.load(f)
  best, last = summary["best"], summary["iterations"][-1]
  return {"best_iteration": summary["best_iteration"],
          "iterations": len(summary["iterations"]),
          "selection": summary["selection"],
          "val_accuracy": best["val_accuracy"],
          "test_accuracy": best["test_accuracy"],
          "best_connectivity": best["connectivity"],
          "sops": best["sops"], "energy_uj": best["energy_uj"],
          "final_connectivity": last["connectivity"],
          "final_test_accuracy": last["test_accuracy"],
          "per_iteration": [_trajectories.iteration_record(row)
                            for row in summary["iterations"]]}


def read_timing(path: str) -> list[dict]:
  """The invocations of a run: ``[{"ended", "seconds", "exit"}]`` (none if
  the file is missing)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return json.load(f)


def mean_std(values: Sequence[float]) -> dict:
  """``{"mean", "std", "n"}``: ``std`` is the sample standard deviation
  (``ddof=1``), ``None`` below two values; ``mean`` is ``None`` for none."""
  values = [float(v) for v in values]
  n = len(values)
  return {"mean": float(np.mean(values)) if n else None,
          "std": float(np.std(values, ddof=1)) if n > 1 else None, "n": n}


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> dict:
  """Seed-by-seed ``a - b`` over the seeds in both.

  Returns ``{"seeds", "differences", "mean", "std", "n", "exceeds_std"}``;
  ``exceeds_std`` is ``|mean| > std``, ``None`` when there is no std.
  """
  seeds = sorted(set(a) & set(b))
  diffs = [float(a[s]) - float(b[s]) for s in seeds]
  stats = mean_std(diffs)
  exceeds = (None if stats["std"] is None
             else bool(abs(stats["mean"]) > stats["std"]))
  return {"seeds": seeds, "differences": diffs, **stats,
          "exceeds_std": exceeds}


def results(header: Mapping[str, Any], arms: Sequence[Mapping[str, Any]],
            paired_arms: tuple[str, str] | None) -> dict:
  """The content of ``results.json``.

  Args:
    header: study-level facts copied as they are (name, scale, settings,
      targets, ...).
    arms: per arm ``{"name", "description", "target", "command", "runs":
      [{"seed", "workdir", "timing", "command"}]}`` (``command``: the arm's
      study command; a run's is its ``experiments.main`` line, or ``None``
      while its target is unknown; ``timing``: the file of its invocations'
      wall times, :func:`read_timing`).
    paired_arms: ``(arm, other)`` to compare seed by seed, or ``None``.
  """
  out_arms = []
  for arm in arms:
    runs = []
    for run in arm["runs"]:
      record = read_run(run["workdir"])
      seconds = sum(e["seconds"] for e in read_timing(run["timing"]))
      runs.append({**run, "finished": record is not None, **(record or {}),
                   "wall_seconds": seconds})
    done = [r for r in runs if r["finished"]]
    stats = {key: mean_std([r[key] for r in done]) for key, *_ in COLUMNS}
    trajectory = _trajectories.mean_series([r["per_iteration"] for r in done])
    status = ("pending" if not done else
              "done" if len(done) == len(runs) else "partial")
    out_arms.append({"name": arm["name"], "description": arm["description"],
                     "target": arm["target"], "command": arm["command"],
                     "wall_seconds": sum(r["wall_seconds"] for r in runs),
                     "status": status, "seeds_planned": len(runs),
                     "seeds_finished": [r["seed"] for r in done],
                     "stats": stats, "trajectory": trajectory,
                     "runs": runs})
  comparison = None
  if paired_arms:
    by_name = {a["name"]: a for a in out_arms}
    comparison = {"arm": paired_arms[0], "other": paired_arms[1]}
    for metric in PAIRED_METRICS:
      values = [{r["seed"]: r[metric] for r in by_name[n]["runs"]
                 if r["finished"]} for n in paired_arms]
      comparison[metric] = paired(*values)
  return {**header, "arms": out_arms, "paired": comparison,
          "gaussian": _gaussian(out_arms, header.get("reference")),
          "wall_seconds": sum(a["wall_seconds"] for a in out_arms)}


def _gaussian(arms: Sequence[Mapping[str, Any]],
              reference: str | None) -> dict | None:
  """The Gaussian trajectory from the reference arm's first finished run
  (its sparsity config and its iteration-1 connectivity), or ``None``."""
  runs = [r for a in arms if a["name"] == reference for r in a["runs"]
          if r["finished"]]
  if not runs:
    return None
  with open(os.path.join(runs[0]["workdir"], "config.json")) as f:
    sparsity = json.load(f)["sparsity"]
  rows = runs[0]["per_iteration"]
  return _trajectories.gaussian_trajectory(rows[0]["connectivity"],
                                           len(rows), sparsity)


def _cell(stats: Mapping[str, Any], scale: float, fmt: str,
          mean_fmt: str | None = None) -> str:
  if stats["mean"] is None:
    return "-"
  text = format(scale * stats["mean"], mean_fmt or fmt)
  if stats["std"] is not None:
    text += " ± " + format(scale * stats["std"], fmt)
  return text


def _value(value, scale: float, fmt: str) -> str:
  return "-" if value is None else format(scale * value, fmt)


def _paired_text(res: Mapping[str, Any]) -> list[str]:
  comp = res["paired"]
  a, b = comp["arm"], comp["other"]
  lines = [f"## {a} against {b}, paired by seed", "",
           f"Per seed, `{a}` minus `{b}`, in percentage points of test "
           "accuracy; mean ± sample std over the seeds both finished.", "",
           "| metric | seeds | per-seed differences | mean ± std | "
           "abs(mean) > std |", "|---|---|---|---:|---|"]
  titles = {"test_accuracy": "test acc. at best val. iteration",
            "final_test_accuracy": "test acc. at last iteration (equal "
                                   "density)"}
  for metric in PAIRED_METRICS:
    p = comp[metric]
    if not p["n"]:
      lines.append(f"| {titles[metric]} | none | - | - | - |")
      continue
    diffs = ", ".join(f"{100 * d:+.2f}" for d in p["differences"])
    exceeds = {None: "undefined (one seed)", True: "yes",
               False: "no"}[p["exceeds_std"]]
    lines.append(f"| {titles[metric]} | {', '.join(map(str, p['seeds']))} | "
                 f"{diffs} | {_cell(p, 100.0, '.2f', '+.2f')} | {exceeds} |")
  return lines


def markdown(res: Mapping[str, Any]) -> str:
  """``results.md``: settings, targets, the arm table, the paired
  comparison, every run with its command, and the figure."""
  lines = [f"# Study `{res['study']}` (scale {res['scale']})", "",
           f"Base config `{res['config']}`; settings for every arm: "
           + (" ".join(f"`{s}`" for s in res["settings_flags"]) or "none")
           + ". Seeds: " + ", ".join(map(str, res["seeds"])) + ".", ""]
  if res.get("budget"):
    lines += [f"Budget: {res['budget']}", ""]
  targets = res.get("targets")
  if targets:
    ref = targets["reference"]
    finals = ", ".join(f"{ref['final_connectivity'][s]:.6f}"
                       for s in sorted(ref["final_connectivity"], key=int))
    lines += [f"**Equal final density.** Target d = {ref['target']:.6f}: the "
              f"mean final connectivity of `{ref['arm']}` over seeds "
              f"{', '.join(map(str, ref['seeds']))} ({finals})"
              + (f", taken from `{targets['adopted_from']}`"
                 if targets.get("adopted_from") else "")
              + ". Settings that end at d:", ""]
    for name, t in targets["arms"].items():
      extra = ""
      if t.get("predicted_final_connectivity") is not None:
        extra = (f" (ends at {t['predicted_final_connectivity']:.6f} by the "
                 "net-prune arithmetic)")
      lines.append(f"- `{name}`: `--config.{t['field']}={t['value']}`{extra}")
    lines.append("")
  elif res.get("reference"):
    lines += [f"**Equal final density.** Not arranged yet: `{res['reference']}`"
              " has not finished all its seeds.", ""]
  lines += ["## Arms", "",
            "Mean ± sample std over the finished seeds. The command of a row "
            "runs (or resumes, or skips) all its seeds; each run's own "
            "command is under Runs.", ""]
  header = (["arm", "what", "seeds done"] + [c[1] for c in COLUMNS]
            + ["reproduce"])
  lines += ["| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS) + ["---"])
            + "|"]
  for arm in res["arms"]:
    done = f"{len(arm['seeds_finished'])}/{arm['seeds_planned']}"
    if arm["status"] == "pending":
      done += " (pending)"
    cells = [f"`{arm['name']}`", arm["description"], done]
    cells += [_cell(arm["stats"][key], scale, fmt)
              for key, _, scale, fmt in COLUMNS]
    cells.append(f"`{arm['command']}`")
    lines.append("| " + " | ".join(cells) + " |")
  lines.append("")
  if res.get("paired"):
    lines += _paired_text(res) + [""]
  lines += _trajectories.markdown(res["arms"], res.get("gaussian"))
  lines += ["## Runs", "",
            f"Compute: {res['wall_seconds'] / 3600:.2f} h of wall time in "
            "all (each run's, summed over its invocations).", "",
            "| arm | seed | status | best iteration | test acc. (%) | "
            "final connectivity (%) | SOPs (M) | energy (µJ) | wall time (min) | "
            "command |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
  for arm in res["arms"]:
    for run in arm["runs"]:
      status = "done" if run["finished"] else "not finished"
      command = (f"`{run['command']}`" if run["command"]
                 else "(waits for the target density)")
      lines.append(
          f"| `{arm['name']}` | {run['seed']} | {status} | "
          f"{run.get('best_iteration') or '-'} | "
          f"{_value(run.get('test_accuracy'), 100.0, '.2f')} | "
          f"{_value(run.get('final_connectivity'), 100.0, '.2f')} | "
          f"{_value(run.get('sops'), 1e-6, '.3f')} | "
          f"{_value(run.get('energy_uj'), 1.0, '.3f')} | "
          f"{run['wall_seconds'] / 60:.1f} | {command} |")
  lines.append("")
  if res.get("figure"):
    lines += ["## Per-iteration curves", "",
              f"![per-iteration curves]({res['figure']})", ""]
  for note in res.get("notes", []):
    lines += [f"Note: {note}", ""]
  lines += ["Commands run from the repository root; a run's command resumes "
            "its workdir if interrupted."]
  return "\n".join(lines) + "\n"


def figure(arms: Sequence[Mapping[str, Any]], path: str,
           gaussian: Mapping[str, Any] | None = None) -> list[str]:
  """Draws each arm's per-iteration curves (mean ± std over its seeds;
  runs still going from ``metrics.jsonl``) with ``experiments.plot``, and
  the ``gaussian`` trajectory (:func:`results`'s) dashed under them.

  Runs are grouped by ``plot.group_runs`` (configs equal up to the seed)
  and each group is labelled by its arm. Returns notes: arms whose runs
  share one config (their overrides changed nothing), or why there is no
  figure.
  """
  from experiments import plot  # pylint: disable=g-import-not-at-top
  loaded, arm_of = [], {}
  for arm in arms:
    for run in arm["runs"]:
      if (os.path.exists(os.path.join(run["workdir"], "summary.json")) or
          os.path.exists(os.path.join(run["workdir"], "metrics.jsonl"))):
        loaded.append(plot.load_run(run["workdir"]))
        arm_of[run["workdir"]] = arm["name"]
  if not loaded:
    return ["no run has started yet: no figure."]
  notes, groups = [], []
  for group in plot.group_runs(loaded):
    names = list(dict.fromkeys(arm_of[r["workdir"]] for r in group["runs"]))
    if len(names) > 1:
      notes.append(f"arms {', '.join(names)} ran the same config.")
    label = " = ".join(names)
    running = sum(not r["finished"] for r in group["runs"])
    if running:
      label += f" ({running} running)"
    groups.append({"label": label, "runs": [r["rows"] for r in group["runs"]]})
  try:
    from snn_sparse.training import plotting  # pylint: disable=g-import-not-at-top
    reference = gaussian and {
        "label": f"Gaussian weights (c = {gaussian['ratio']:.4f} per net "
                 "prune)", "connectivity": gaussian["connectivity"]}
    plotting.plot_comparison(groups, path, reference=reference)
  except ImportError:
    notes.append("matplotlib is not installed (pip install -e '.[viz]'): "
                 "no figure.")
  return notes
