"""experiments/plot.py on real runs: seeds grouped, a run still going, the
table of best iterations, the command line."""

import json
import os
import subprocess
import sys

import pytest

from experiments import plot
from experiments.configs import default
from snn_sparse.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(seed, algorithm):
  config = default.get_config()
  config.model.name = "mlp"
  config.model.features = (64,)
  config.time_steps = 2
  config.num_iterations = 2
  config.epochs_per_iteration = 1
  config.log_every_steps = 10
  config.sparsity.rewire_every = 10
  config.seed = seed
  config.sparsity.algorithm = algorithm
  return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("runs")
  dirs = {name: str(root / name) for name in ("pq_s0", "pq_s1", "set_s0")}
  train.train_and_evaluate(_config(0, "pq_dst"), dirs["pq_s0"])
  train.train_and_evaluate(_config(1, "pq_dst"), dirs["pq_s1"])
  # Still going: stopped in iteration 2, in the middle of writing a line.
  train.train_and_evaluate(_config(0, "set"), dirs["set_s0"],
                           stop_after_steps=25)
  with open(os.path.join(dirs["set_s0"], "metrics.jsonl"), "a") as f:
    f.write('{"event": "train", "step": 3')
  return dirs


def test_load_a_finished_and_a_running_run(runs):
  done = plot.load_run(runs["pq_s0"])
  with open(os.path.join(runs["pq_s0"], "summary.json")) as f:
    summary = json.load(f)
  assert done["finished"] and done["rows"] == summary["iterations"]
  assert done["best_iteration"] == summary["best_iteration"]
  assert done["config"]["sparsity.algorithm"] == "pq_dst"
  going = plot.load_run(runs["set_s0"])
  assert not going["finished"]
  assert [r["iteration"] for r in going["rows"]] == [1]  # its eval events
  assert going["best_iteration"] == 1 and going["num_iterations"] == 2
  assert going["rows"][0]["test_accuracy"] > 0.3


def test_seeds_form_one_group(runs):
  groups = plot.group_runs([plot.load_run(runs[k])
                            for k in ("pq_s0", "set_s0", "pq_s1")])
  assert [g["label"] for g in groups] == [
      "sparsity.algorithm=pq_dst", "sparsity.algorithm=set (1 running)"]
  assert [[r["workdir"] for r in g["runs"]] for g in groups] == [
      [runs["pq_s0"], runs["pq_s1"]], [runs["set_s0"]]]
  one = plot.group_runs([plot.load_run(runs["pq_s0"])])
  assert one[0]["label"] == "pq_dst"


def test_markdown_table_of_best_iterations(runs):
  groups = plot.group_runs([plot.load_run(runs[k])
                            for k in ("pq_s0", "pq_s1", "set_s0")])
  lines = plot.markdown_table(groups).splitlines()
  assert lines[0].startswith("| run | group | status | best iteration |")
  assert len(lines) == 2 + 3 + 1  # header, 3 runs, the mean of 2 seeds
  s0 = plot.load_run(runs["pq_s0"])
  best = s0["rows"][s0["best_iteration"] - 1]
  cells = [c.strip() for c in lines[2].strip("|").split("|")]
  assert cells[:4] == [runs["pq_s0"], "sparsity.algorithm=pq_dst",
                       "done, 2 iterations", str(s0["best_iteration"])]
  assert cells[5] == f"{100 * best['test_accuracy']:.2f}"
  assert lines[4].startswith("| **mean ± std of 2** |") and " ± " in lines[4]
  assert "running, 1/2 iterations" in lines[5]


def test_command_line(runs, tmp_path):
  out = tmp_path / "fig" / "compare.png"
  result = subprocess.run(
      [sys.executable, "-m", "experiments.plot", runs["pq_s0"], runs["pq_s1"],
       runs["set_s0"], "--out", str(out)],
      cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert out.stat().st_size > 20_000
  table = (tmp_path / "fig" / "compare.md").read_text()
  assert table in result.stdout and table.count("\n") == 6
  assert plot.main([str(tmp_path), "--out", str(out)]) == 1  # not a workdir
  with pytest.raises(SystemExit):  # --out is required
    plot.main([runs["pq_s0"]])
