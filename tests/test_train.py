"""End to end: the two-stage loop on real digits, resume, every algorithm."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.configs import default
from snn_sparse import reporting, train
from snn_sparse.sparsity import algorithms


def _config(**overrides):
  config = default.get_config()
  config.model.name = "mlp"
  config.model.features = (64,)
  config.time_steps = 2
  config.num_iterations = 3
  config.epochs_per_iteration = 1
  config.log_every_steps = 11
  config.sparsity.rewire_every = 11
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def _rows(workdir):
  return json.load(open(os.path.join(workdir, "summary.json")))["iterations"]


def test_two_stage_run_writes_the_paper_report(tmp_path):
  summary = train.train_and_evaluate(_config(), str(tmp_path))
  rows = summary["iterations"]
  assert [r["iteration"] for r in rows] == [1, 2, 3]
  assert rows == _rows(tmp_path)
  # Iteration 1 trains at the initial density, and the net prune lowers it.
  assert rows[0]["connectivity"] == pytest.approx(0.5, abs=0.01)
  assert rows[0]["connectivity"] > rows[1]["connectivity"] > rows[2][
      "connectivity"]
  for r in rows:
    assert 0.5 < r["test_accuracy"] <= 1.0
    assert set(r["connectivity_per_layer"]) == {
        "Dense_0/kernel", "Dense_1/kernel"}
    assert set(r["pq_index_per_layer"]) == set(r["connectivity_per_layer"])
    assert r["sops"] > 0 and r["macs_first_layer"] > 0
    assert r["energy_uj"] == pytest.approx(
        (0.9 * r["sops"] + 4.6 * r["macs_first_layer"]) * 1e-6)
    assert set(r["firing_rate_per_layer"]) == {"SpikingNeuron_0"}
  best = summary["best_iteration"]
  assert summary["best"]["test_accuracy"] == max(
      r["test_accuracy"] for r in rows)
  assert [r["best"] for r in rows] == [r["iteration"] == best for r in rows]
  events = {e["event"] for e in reporting.read_events(
      str(tmp_path / "metrics.jsonl"))}
  assert events == {"train", "rewire", "eval", "iteration_end"}
  assert json.load(open(tmp_path / "config.json"))["data"]["name"] == "digits"
  assert (tmp_path / "summary.png").stat().st_size > 10_000  # [viz] plot


def test_resume_finishes_exactly_like_an_uninterrupted_run(tmp_path):
  config = _config()
  full = train.train_and_evaluate(config, str(tmp_path / "full"))
  # Preempt twice: mid-iteration 2 (step 33), then after iteration 2.
  workdir = str(tmp_path / "resumed")
  train.train_and_evaluate(config, workdir, stop_after_steps=33)
  train.train_and_evaluate(config, workdir, stop_after_steps=11)
  resumed = train.train_and_evaluate(config, workdir)
  # Everything but wall-clock timings is identical.
  strip = lambda rows: [{k: v for k, v in r.items()
                         if k not in ("samples_per_s", "eval_seconds")}
                        for r in rows]
  assert strip(resumed["iterations"]) == strip(full["iterations"])
  assert strip(reporting.read_events(workdir + "/metrics.jsonl")) == strip(
      reporting.read_events(str(tmp_path / "full" / "metrics.jsonl")))


def test_resuming_with_another_config_is_refused(tmp_path):
  train.train_and_evaluate(_config(), str(tmp_path), stop_after_steps=11)
  with pytest.raises(ValueError, match=r"different config \(fields: seed\)"):
    train.train_and_evaluate(_config(seed=1), str(tmp_path))
  # A workdir without a checkpoint yet may start over with a new config.
  fresh = tmp_path / "fresh"
  fresh.mkdir()
  (fresh / "config.json").write_text('{"seed": 5}')
  train.train_and_evaluate(_config(seed=1), str(fresh), stop_after_steps=11)


@pytest.mark.parametrize("name", algorithms.ALGORITHMS)
def test_every_algorithm_runs_in_the_harness(tmp_path, name):
  summary = train.train_and_evaluate(
      _config(**{"sparsity.algorithm": name, "num_iterations": 2}),
      str(tmp_path))
  rows = summary["iterations"]
  assert len(rows) == 2 and all(np.isfinite(r["test_loss"]) for r in rows)
  if name == "dense":
    assert rows[-1]["connectivity"] == 1.0


def test_bad_config_fields_are_named(tmp_path):
  with pytest.raises(ValueError, match=r"config.time_steps: must be a positive"):
    train.train_and_evaluate(_config(time_steps=0), str(tmp_path))
  with pytest.raises(ValueError, match=r"config.loss: unknown 'mse'"):
    train.train_and_evaluate(_config(loss="mse"), str(tmp_path))
  with pytest.raises(ValueError, match=r"config.time_steps: 2, but "
                     r"digits_events holds 6 frames"):
    train.train_and_evaluate(_config(**{"data.name": "digits_events"}),
                             str(tmp_path))


def test_launcher_runs_with_overrides(tmp_path):
  workdir = str(tmp_path / "cli")
  subprocess.run(
      [sys.executable, "-m", "experiments.main",
       "--config", "experiments/configs/default.py", "--workdir", workdir,
       "--config.num_iterations=2", "--config.epochs_per_iteration=1",
       "--config.model.name=mlp", "--config.time_steps=2",
       "--config.sparsity.algorithm=set"],
      check=True, cwd=os.path.dirname(os.path.dirname(__file__)),
      env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True)
  rows = _rows(workdir)
  assert len(rows) == 2
  assert json.load(open(os.path.join(workdir, "config.json")))[
      "sparsity"]["algorithm"] == "set"
