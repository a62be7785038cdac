"""End to end: the two-stage loop on real digits, resume, every algorithm."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import default
from snn_sparse.training import checkpointing, reporting, train
from snn_sparse.sparsity import algorithms
from snn_sparse.sparsity.state import SparseState
from snn_sparse.training.train_state import TrainState


def _config(**overrides):
  config = default.get_config()
  config.model.name = "mlp"
  config.model.features = (64,)
  config.time_steps = 2
  config.num_iterations = 3
  config.epochs_per_iteration = 1
  config.log_every_steps = 11
  config.sparsity.rewire_every = 11
  config.update_from_flattened_dict(overrides)
  return config


def _rows(workdir):
  return json.load(open(os.path.join(workdir, "summary.json")))["iterations"]


def test_two_stage_run_writes_the_paper_report(tmp_path):
  # digits with 10% held out: 1,293 / 64 = 20 steps per epoch, 2 epochs per
  # iteration = 40 steps, an event every 10 steps.
  summary = train.train_and_evaluate(
      _config(epochs_per_iteration=2, log_every_steps=10,
              **{"sparsity.rewire_every": 10}), str(tmp_path))
  rows = summary["iterations"]
  events = reporting.read_events(str(tmp_path / "metrics.jsonl"))
  steps = lambda kind: [e["step"] for e in events if e["event"] == kind]
  # No rewiring in the last rewire_every steps of an iteration: the network
  # that is evaluated and net-pruned has trained 10 steps since the last one.
  assert steps("rewire") == [10, 20, 30, 50, 60, 70, 90, 100, 110]
  assert steps("eval") == [40, 80, 120]
  assert steps("iteration_end") == [40, 80]
  # Grown survival of each net prune: logged, and in the summary rows.
  for e, r in zip([e for e in events if e["event"] == "iteration_end"], rows):
    alive, kept = e["total/grown_alive"], e["total/grown_kept"]
    assert alive > 0 and 0 <= kept <= alive
    assert e["total/grown_survival"] == pytest.approx(kept / alive)
    assert r["grown_survival"] == e["total/grown_survival"]
    assert set(r["grown_survival_per_layer"]) == {
        "Dense_0/kernel", "Dense_1/kernel"}
  assert "grown_survival" not in rows[-1]  # no net prune after the last
  # The learning rate of each train event: the cosine schedule over the run.
  for e in events:
    if e["event"] == "train":
      assert e["learning_rate"] == pytest.approx(
          0.05 * 0.5 * (1 + np.cos(np.pi * (e["step"] - 1) / 120)), abs=1e-6)
  # The best iteration is chosen on the validation split.
  assert summary["selection"] == "validation"
  assert summary["validation_examples"] == 144
  for r in rows:
    assert 0.5 < r["val_accuracy"] <= 1.0 and r["val_loss"] > 0
  best_val = max(r["val_accuracy"] for r in rows)
  assert summary["best_iteration"] == next(
      r["iteration"] for r in rows if r["val_accuracy"] == best_val)
  best_ckpt = checkpointing.Checkpointer(str(tmp_path / "best"))
  assert best_ckpt.latest_step() == rows[summary["best_iteration"] - 1][
      "step"]
  best_ckpt.close()
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
  assert [r["best"] for r in rows] == [r["iteration"] == best for r in rows]
  assert {e["event"] for e in events} == {"train", "rewire", "eval",
                                          "iteration_end"}
  assert json.load(open(tmp_path / "config.json"))["data"]["name"] == "digits"
  assert (tmp_path / "summary.png").stat().st_size > 10_000  # [viz] plot


def test_without_validation_the_selection_is_on_test(tmp_path):
  summary = train.train_and_evaluate(
      _config(num_iterations=2, **{"data.validation_fraction": 0.0}),
      str(tmp_path))
  rows = summary["iterations"]
  assert summary["selection"] == "test"
  assert all(r["val_accuracy"] is None for r in rows)
  assert summary["best"]["test_accuracy"] == max(
      r["test_accuracy"] for r in rows)
  # 1,437 / 64 = 22 steps per epoch: every example is trained on.
  assert [r["step"] for r in rows] == [22, 44]


def test_sap_learning_rate_restarts_each_iteration(tmp_path):
  # Diao's SAP re-creates its schedule per iteration: the cosine runs over
  # each iteration's 20 steps, 0.05 at its first step.
  summary = train.train_and_evaluate(
      _config(num_iterations=2, log_every_steps=1,
              **{"sparsity.algorithm": "sap"}), str(tmp_path))
  assert len(summary["iterations"]) == 2
  lr = {e["step"]: e["learning_rate"] for e in reporting.read_events(
      str(tmp_path / "metrics.jsonl")) if e["event"] == "train"}
  for step in range(1, 41):
    assert lr[step] == pytest.approx(
        0.05 * 0.5 * (1 + np.cos(np.pi * ((step - 1) % 20) / 20)), abs=1e-6)
  # Told not to restart, SAP keeps the whole-run cosine:
  config = _config(num_iterations=2, log_every_steps=1,
                   **{"optimizer.restart_each_iteration": False,
                      "sparsity.algorithm": "sap"})
  train.train_and_evaluate(config, str(tmp_path / "no_restart"))
  lr = {e["step"]: e["learning_rate"] for e in reporting.read_events(
      str(tmp_path / "no_restart" / "metrics.jsonl"))
        if e["event"] == "train"}
  # SAP re-initialises the optimizer (its count), so without the restart
  # its iterations start again at the top of the whole-run cosine.
  assert lr[21] == pytest.approx(0.05) and lr[20] == pytest.approx(
      0.05 * 0.5 * (1 + np.cos(np.pi * 19 / 40)), abs=1e-6)


def test_summary_pq_index_in_the_configured_scope():
  # One 3x2 kernel; unit 0 has |w| = 1, 4 (I = 1 - 2.25/2.5 = 0.1), unit 1
  # has |w| = 2, 2, 2 (I = 0); layer: |w| = 1 4 2 2 2, mean(sqrt)**2 =
  # ((1 + 2 + 3 * 1.41421) / 5)**2 = 2.0950, mean = 2.2, I = 0.04772.
  params = {"d": {"kernel": jnp.array([[1.0, 2.0], [4.0, 2.0], [0.0, 2.0]])}}
  masks = {"d": {"kernel": jnp.array([[True, True], [True, True],
                                      [False, True]])}}
  state = TrainState.create(apply_fn=None, params=params,
                            tx=optax.sgd(0.1),
                            sparsity=SparseState.from_masks(masks))
  out = train.sparsity_summary(state, 0.5, 1.0, "neuron")
  assert out["pq_index_per_layer"]["d/kernel"] == pytest.approx(
      1 - ((1 + 2 + 3 * 2**0.5) / 5)**2 / 2.2, rel=1e-5)
  assert out["pq_index_neuron_mean_per_layer"]["d/kernel"] == pytest.approx(
      0.05, rel=1e-5)
  assert out["pq_index_neuron_std_per_layer"]["d/kernel"] == pytest.approx(
      0.05, rel=1e-5)
  assert "pq_index_global" not in out
  out = train.sparsity_summary(state, 0.5, 1.0, "global")
  assert out["pq_index_global"] == pytest.approx(
      out["pq_index_per_layer"]["d/kernel"])  # one kernel: global = layer
  assert "pq_index_neuron_mean_per_layer" not in out


def test_resume_finishes_exactly_like_an_uninterrupted_run(tmp_path):
  config = _config()
  full = train.train_and_evaluate(config, str(tmp_path / "full"))
  # Preempt twice: mid-iteration 2 (step 33), then after it (step 40).
  workdir = str(tmp_path / "resumed")
  train.train_and_evaluate(config, workdir, stop_after_steps=33)
  train.train_and_evaluate(config, workdir, stop_after_steps=7)
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
       "--config.sparsity.algorithm=set",
       "--config.sparsity.rewire_every=10"],
      check=True, cwd=os.path.dirname(os.path.dirname(__file__)),
      env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True)
  rows = _rows(workdir)
  assert len(rows) == 2
  assert json.load(open(os.path.join(workdir, "config.json")))[
      "sparsity"]["algorithm"] == "set"
