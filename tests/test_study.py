"""experiments/study.py: the digits_ci study end to end through the command
line (equal density, resume, skip, results), and each rule on its own with
hand-computed values (the density arithmetic, the aggregation, targets that
stay fixed, refusals)."""

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from experiments import study as S
from experiments import studies
from experiments.studies import _aggregate as A
from experiments.studies import _equal_density as E
from experiments.studies import _trajectories as T
from experiments.studies import Arm, Study
from snn_sparse import sparsity
from snn_sparse.sparsity.pq import pq_index
from snn_sparse.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The digits_ci MLP (64 -> 256 -> 128 -> 10), ERK at 0.5 by hand:
# scales sum(shape)/prod(shape) = 320/16384, 384/32768, 138/1280; Dense_2
# would exceed 1, so it is capped (1,280 active) and the rest re-solved:
# eps = (25,216 - 1,280) / (320 + 384) = 34, giving 34 * 320 = 10,880 and
# 34 * 384 = 13,056 active.
TOTAL = 64 * 256 + 256 * 128 + 128 * 10  # 50,432 prunable synapses
INITIAL = {"Dense_0/kernel": 10880, "Dense_1/kernel": 13056,
           "Dense_2/kernel": 1280}
STEPS_PER_ITERATION = 20  # 1,293 training digits // 64


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "experiments.study", *args],
                        cwd=ROOT, capture_output=True, text=True, check=False)


def _md5(path):
  with open(path, "rb") as f:
    return hashlib.md5(f.read()).hexdigest()


def _summary(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


# ---- The digits_ci study end to end ----------------------------------------


@pytest.fixture(scope="module")
def ci(tmp_path_factory):
  """digits_ci through the command line, after leaving pq_dst interrupted
  (a checkpoint at step 15 of 40), then invoked a second time."""
  directory = str(tmp_path_factory.mktemp("study") / "digits_ci")
  study = studies.load("digits_ci")
  ref = os.path.join(directory, "pq_dst", "seed0")
  config = S.build_config(study, S.run_fields(study, study.arm("pq_dst"), 0,
                                              None))
  train.train_and_evaluate(config, ref, stop_after_steps=15)
  assert not os.path.exists(os.path.join(ref, "summary.json"))
  with open(os.path.join(ref, "metrics.jsonl")) as f:
    partial = f.read().splitlines()
  first = _cli("--study", "digits_ci", "--dir", directory)
  md5 = {arm: _md5(os.path.join(directory, arm, "seed0", "metrics.jsonl"))
         for arm in ("pq_dst", "constant_ratio")}
  second = _cli("--study", "digits_ci", "--dir", directory)
  return {"dir": directory, "partial": partial, "first": first,
          "second": second, "md5": md5, "study": study}


def test_the_study_runs_and_resumes_the_interrupted_run(ci):
  first = ci["first"]
  assert first.returncode == 0, first.stdout + first.stderr
  assert "1 to resume, 1 new" in first.stdout
  assert "resume pq_dst/seed0" in first.stdout
  assert "start constant_ratio/seed0" in first.stdout
  # The reference ran before the arm that needs its density.
  assert (first.stdout.index("done pq_dst/seed0") <
          first.stdout.index("Equal final density") <
          first.stdout.index("start constant_ratio/seed0"))
  ref = os.path.join(ci["dir"], "pq_dst", "seed0")
  with open(os.path.join(ref, "metrics.jsonl")) as f:
    lines = f.read().splitlines()
  # Resumed, not restarted: the lines of the interrupted part (with their
  # wall-clock rates) are still there, and training went on from step 15.
  assert ci["partial"] and lines[:len(ci["partial"])] == ci["partial"]
  assert len(lines) > len(ci["partial"])
  assert len(_summary(ref)["iterations"]) == 2
  # One invocation each (the partial part ran outside the study).
  for arm in ("pq_dst", "constant_ratio"):
    timing = A.read_timing(os.path.join(ci["dir"], arm, "seed0.timing.json"))
    assert [e["exit"] for e in timing] == [0] and timing[0]["seconds"] > 0


def test_targets_and_equal_final_density(ci):
  with open(os.path.join(ci["dir"], "targets.json")) as f:
    targets = json.load(f)
  ref = _summary(os.path.join(ci["dir"], "pq_dst", "seed0"))
  const = _summary(os.path.join(ci["dir"], "constant_ratio", "seed0"))
  pq_final = ref["iterations"][-1]["connectivity"]
  d = targets["reference"]["target"]
  assert targets["reference"]["seeds"] == [0]
  assert d == round(pq_final, 6)
  entry = targets["arms"]["constant_ratio"]
  assert entry["field"] == "sparsity.constant_ratio"
  assert entry["tolerance"] == pytest.approx(3 / TOTAL)  # 3 layers, 1 prune
  # The run ended where the arithmetic said, within d's rounding.
  final = const["iterations"][-1]["connectivity"]
  assert final == pytest.approx(entry["predicted_final_connectivity"],
                                abs=1e-6)
  assert abs(final - pq_final) <= 3 / TOTAL
  # By hand: one net prune of floor(c * n) per layer from the ERK counts.
  active = sum(n - math.floor(entry["value"] * n) for n in INITIAL.values())
  assert final == pytest.approx(active / TOTAL, abs=1e-6)
  # The run's config is the arm's: a constant ratio of the solved value.
  with open(os.path.join(ci["dir"], "constant_ratio", "seed0",
                         "config.json")) as f:
    config = json.load(f)["sparsity"]
  assert (config["algorithm"], config["ratio"], config["constant_ratio"]) == (
      "pq_dst", "constant", entry["value"])
  assert "constant_ratio: --config.sparsity.constant_ratio=" in ci[
      "first"].stdout


def test_results_md_and_json(ci):
  with open(os.path.join(ci["dir"], "results.json")) as f:
    res = json.load(f)
  with open(os.path.join(ci["dir"], "results.md")) as f:
    md = f.read()
  assert os.path.exists(os.path.join(ci["dir"], "results.png"))
  arms = {a["name"]: a for a in res["arms"]}
  assert list(arms) == ["pq_dst", "constant_ratio"]
  for name, arm in arms.items():
    summary = _summary(os.path.join(ci["dir"], name, "seed0"))
    stats = arm["stats"]
    assert arm["status"] == "done" and arm["seeds_finished"] == [0]
    assert stats["test_accuracy"] == {
        "mean": summary["best"]["test_accuracy"], "std": None, "n": 1}
    assert stats["final_connectivity"]["mean"] == (
        summary["iterations"][-1]["connectivity"])
    assert stats["sops"]["mean"] == summary["best"]["sops"]
    assert stats["energy_uj"]["mean"] == summary["best"]["energy_uj"]
    # The one command of each run, as it was printed when it ran.
    command = arm["runs"][0]["command"]
    assert command.startswith(
        "python -m experiments.main --config experiments/configs/default.py "
        f"--workdir {os.path.join(ci['dir'], name, 'seed0')} ")
    assert f"`{command}`" in md
    assert command in ci["first"].stdout
    assert (f"| `{name}` | {arm['description']} | 1/1 | "
            f"{100 * summary['best']['test_accuracy']:.2f} |") in md
    # Per iteration, from the run's own rows (one seed: the means are them).
    rows = summary["iterations"]
    pq_means = [sum(r["pq_index_per_layer"].values()) /
                len(r["pq_index_per_layer"]) for r in rows]
    assert arm["trajectory"]["connectivity"] == [r["connectivity"]
                                                for r in rows]
    assert arm["trajectory"]["pq_index"] == pytest.approx(pq_means)
    assert arm["trajectory"]["grown_survival"] == [
        rows[0]["grown_survival"], None]  # no net prune after the last
    assert (f"| `{name}` | {100 * rows[0]['connectivity']:.1f} → "
            f"{100 * rows[1]['connectivity']:.1f} | {pq_means[0]:.3f} → "
            f"{pq_means[1]:.3f} | {100 * rows[0]['grown_survival']:.0f} → · | "
            ) in md
  diff = (arms["pq_dst"]["stats"]["test_accuracy"]["mean"] -
          arms["constant_ratio"]["stats"]["test_accuracy"]["mean"])
  paired = res["paired"]["test_accuracy"]
  assert paired["differences"] == [pytest.approx(diff)]
  assert paired["exceeds_std"] is None
  assert "## pq_dst against constant_ratio, paired by seed" in md
  assert "undefined (one seed)" in md
  seconds = sum(A.read_timing(r["timing"])[0]["seconds"]
                for a in res["arms"] for r in a["runs"])
  assert res["wall_seconds"] == pytest.approx(seconds)
  assert f"Compute: {seconds / 3600:.2f} h of wall time" in md


def test_a_second_invocation_skips_finished_runs(ci):
  second = ci["second"]
  assert second.returncode == 0, second.stdout + second.stderr
  assert "2 finished (skipped), 0 to resume, 0 new" in second.stdout
  assert "start" not in second.stdout and "resume " not in second.stdout
  for arm, md5 in ci["md5"].items():
    assert _md5(os.path.join(ci["dir"], arm, "seed0", "metrics.jsonl")) == md5
    assert len(A.read_timing(os.path.join(ci["dir"], arm,
                                          "seed0.timing.json"))) == 1


def test_published_targets_run_one_targeted_arm_alone(ci, tmp_path):
  published = os.path.join(ci["dir"], "targets.json")
  directory = str(tmp_path / "again")
  out = _cli("--study", "digits_ci", "--dir", directory, "--only",
             "constant_ratio", "--targets", published)
  assert out.returncode == 0, out.stdout + out.stderr
  assert f"Targets from {published}." in out.stdout
  assert not os.path.exists(os.path.join(directory, "pq_dst"))  # not needed
  # The same run as the study's own: the same setting, the same result.
  with open(published) as f:
    value = json.load(f)["arms"]["constant_ratio"]["value"]
  assert f"--config.sparsity.constant_ratio={value!r}" in out.stdout
  again = _summary(os.path.join(directory, "constant_ratio", "seed0"))
  first = _summary(os.path.join(ci["dir"], "constant_ratio", "seed0"))
  assert [(r["connectivity"], r["test_accuracy"]) for r in again["iterations"]
          ] == [(r["connectivity"], r["test_accuracy"])
                for r in first["iterations"]]
  with open(os.path.join(directory, "results.md")) as f:
    assert f"taken from `{published}`" in f.read()


def test_bad_published_targets_are_refused(ci, tmp_path, capsys):
  with open(os.path.join(ci["dir"], "targets.json")) as f:
    good = json.load(f)
  def refused(targets, directory=None):
    path = tmp_path / "targets.json"
    path.write_text(targets if isinstance(targets, str) else
                    json.dumps(targets))
    directory = directory or str(tmp_path / "new")
    assert S.main(["--study", "digits_ci", "--dir", directory,
                   "--targets", str(path)]) == 1
    return capsys.readouterr().err
  assert "holds the targets of study other at scale small" in refused(
      {**good, "study": "other"})
  assert "has no target for arm(s) constant_ratio" in refused(
      {**good, "arms": {}})
  assert "cannot read a study's targets.json" in refused("{")
  moved = {**good, "reference": {**good["reference"], "target": 0.5}}
  message = refused(moved, directory=ci["dir"])
  assert "holds other targets (d = " in message and "(d = 0.500000)" in message
  with open(os.path.join(ci["dir"], "targets.json")) as f:
    assert json.load(f) == good  # the study's own targets are kept
  assert not os.path.exists(tmp_path / "new")  # nothing written when refused


def test_a_workdir_of_another_config_is_refused(ci, tmp_path, capsys):
  directory = str(tmp_path / "copy")
  shutil.copytree(ci["dir"], directory)
  path = os.path.join(directory, "constant_ratio", "seed0", "config.json")
  with open(path) as f:
    config = json.load(f)
  config["time_steps"] = 3
  with open(path, "w") as f:
    json.dump(config, f)
  assert S.main(["--study", "digits_ci", "--dir", directory]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: constant_ratio/seed0: ")
  assert "different config (fields: time_steps)" in err


# ---- Bad input ------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--study", "nope"], "unknown study 'nope': the studies are "),
    (["--study", "digits_ci", "--only", "pq_dst,nope"],
     "--only 'pq_dst,nope': unknown arm(s) nope; the arms of digits_ci are "
     "pq_dst, constant_ratio."),
    (["--study", "digits_ci", "--seeds", "0,a"],
     "--seeds '0,a': give distinct integers >= 0"),
    (["--study", "digits_ci", "--seeds", "1,1"], "--seeds '1,1' repeats"),
    (["--study", "digits_ci", "--scale", "full"],
     "study 'digits_ci' has no scale 'full'; its scales are small"),
])
def test_bad_input_is_one_clear_error(tmp_path, capsys, args, message):
  assert S.main([*args, "--dir", str(tmp_path / "d")]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: " + message) and len(err.splitlines()) == 1
  assert not os.path.exists(tmp_path / "d")


def test_the_studies_that_ship():
  assert {"digits_ci", "fashion_mnist_ablation"} <= set(studies.names())
  small = studies.load("fashion_mnist_ablation", "small")
  full = studies.load("fashion_mnist_ablation", "full")
  assert [a.name for a in small.arms] == [a.name for a in full.arms]
  assert full.config == "experiments/configs/cifar10_resnet19.py"
  runs = S.plan(small, "/d", small.seeds)
  assert len(runs) == 11 * 3 + 3 * 2  # the docstring's budget
  assert [r.key for r in runs[:3]] == ["pq_dst/seed0", "pq_dst/seed1",
                                       "pq_dst/seed2"]
  assert runs[3].workdir == "/d/pq_dst_neuron/seed0"


# ---- Each arm is the algorithm it says ------------------------------------


def test_each_fashion_mnist_arm_builds_its_algorithm():
  study = studies.load("fashion_mnist_ablation", "small")
  d = 0.3075
  targets = S.compute_targets(study, {0: 0.31, 1: 0.305})
  assert targets["reference"]["target"] == d
  want = {  # name: (algorithm, init, init density, scope, rewire amount,
            #        net-prune amount, pq_weights, protect_grown)
      "pq_dst": ("pq_dst", "erk", 0.5, "layer", "PQRatio", "PQRatio"),
      "pq_dst_neuron": ("pq_dst", "erk", 0.5, "neuron", "PQRatio", "PQRatio"),
      "constant_ratio": ("pq_dst", "erk", 0.5, "layer", "ConstantRatio",
                         "ConstantRatio"),
      "cosine_ratio": ("pq_dst", "erk", 0.5, "layer", "CosineRatio",
                       "CosineRatio"),
      "esl": ("esl", "erk", d, "layer", "ConstantRatio", "NoneType"),
      "set": ("set", "erk", d, "layer", "CosineRatio", "NoneType"),
      "rigl": ("rigl", "erk", d, "layer", "CosineRatio", "NoneType"),
      "static": ("static", "erk", d, "layer", "NoneType", "NoneType"),
      "gmp": ("gmp", "dense", 0.5, "layer", "GMPDensity", "NoneType"),
      "sap": ("sap", "dense", 0.5, "layer", "NoneType", "PQRatio"),
      "dense": ("dense", None, None, "layer", "NoneType", "NoneType"),
      "pq_dst_mature": ("pq_dst", "erk", 0.5, "layer", "PQRatio", "PQRatio"),
      "pq_dst_protect_grown": ("pq_dst", "erk", 0.5, "layer", "PQRatio",
                               "PQRatio"),
      "pq_dst_mature_protect_grown": ("pq_dst", "erk", 0.5, "layer",
                                      "PQRatio", "PQRatio"),
  }
  knobs = {"pq_dst_mature": ("mature", False),
           "pq_dst_protect_grown": ("active", True),
           "pq_dst_mature_protect_grown": ("mature", True)}
  for arm in study.arms:
    config = S.build_config(study, S.run_fields(study, arm, 0, targets))
    assert (config.num_iterations, config.epochs_per_iteration,
            config.time_steps) == (4, 1, 4)
    algo = sparsity.from_config(config.sparsity, total_steps=4 * 421,
                                steps_per_iteration=421)
    init = algo.mask_init
    got = (algo.name, init and init.method, init and init.density,
           algo.scope, type(algo.rewire_amount).__name__,
           type(algo.boundary_amount).__name__)
    assert got == want[arm.name], arm.name
    assert (algo.pq_weights, algo.protect_grown) == knobs.get(
        arm.name, ("active", False)), arm.name
  ratios = {n: targets["arms"][n]["value"] for n in ("constant_ratio",
                                                     "cosine_ratio")}
  config = S.build_config(study, S.run_fields(
      study, study.arm("gmp"), 0, targets))
  assert config.sparsity.target_density == d
  for name, field in (("constant_ratio", "constant_ratio"),
                      ("cosine_ratio", "cosine_ratio")):
    config = S.build_config(study, S.run_fields(study, study.arm(name), 0,
                                                targets))
    assert config.sparsity[field] == ratios[name]


# ---- The net-prune arithmetic ----------------------------------------------


def _digits_config(**fields):
  study = studies.load("digits_ci")
  return S.build_config(study, {**study.settings, **fields})


def test_constant_ratio_ends_at_the_target_by_hand():
  arithmetic = E.NetPruneArithmetic(
      _digits_config(**{"sparsity.ratio": "constant"}), "constant_ratio")
  assert arithmetic.counts == INITIAL and arithmetic.total == TOTAL
  # One net prune (2 iterations) of floor(c * n) per layer. At c =
  # 0.167968: 1827.49, 2192.99, 214.999 -> 4,233 removed, 20,983 left; at
  # 0.167969: 1827.50, 2193.003, 215.0003 -> 4,235 removed, 20,981 left.
  assert arithmetic.solve(20981 / TOTAL) == (0.167969, 20981 / TOTAL)
  assert arithmetic.final_connectivity(0.167968) == 20983 / TOTAL
  # Between the two: the closer one.
  assert arithmetic.solve(20982.6 / TOTAL) == (0.167968, 20983 / TOTAL)
  assert arithmetic.solve(20981.4 / TOTAL) == (0.167969, 20981 / TOTAL)
  for active in (18000, 23500):
    target = active / TOTAL
    c, final = arithmetic.solve(target)
    by_hand = sum(n - math.floor(c * n) for n in INITIAL.values())
    assert abs(final - by_hand / TOTAL) <= 3 / TOTAL  # float32 products
    assert abs(final - target) <= 3 / TOTAL
    # No ratio on the grid next to it ends closer.
    for other in (c - 1e-6, c + 1e-6):
      assert abs(arithmetic.final_connectivity(other) - target) >= abs(
          final - target)


def test_cosine_ratio_ends_at_the_target_by_hand():
  iterations = 4
  arithmetic = E.NetPruneArithmetic(
      _digits_config(**{"sparsity.ratio": "cosine",
                        "num_iterations": iterations}), "cosine_ratio")
  target = 0.3
  c0, final = arithmetic.solve(target)
  # rewire_end = 0.75 * 80 steps = 60; net prunes after steps 20, 40, 60:
  # ratios c0 * (1 + cos(pi * t)) / 2 at t = 1/3, 2/3, 1.
  counts = dict(INITIAL)
  for i in range(1, iterations):
    t = min(i * STEPS_PER_ITERATION / 60, 1.0)
    c = c0 * 0.5 * (1 + math.cos(math.pi * t))
    counts = {k: n - math.floor(c * n + 1e-6) for k, n in counts.items()}
  tolerance = 3 * (iterations - 1) / TOTAL
  assert arithmetic.tolerance() == pytest.approx(tolerance)
  assert abs(sum(counts.values()) / TOTAL - final) <= tolerance
  assert abs(final - target) <= tolerance
  assert 0.4 < c0 < 0.5  # (1 - 0.75 c)(1 - 0.25 c) ~ 0.6


def test_a_field_the_base_config_lacks_is_refused_by_name():
  study = Study(name="typo", scale="small",
                config="experiments/configs/default.py", settings={},
                arms=(Arm("a", {"sparsity.algoritm": "set"}),), seeds=(0,))
  with pytest.raises(S.StudyError, match=r"experiments/studies/typo.py sets "
                     r"sparsity.algoritm='set', but experiments/configs/"
                     r"default.py has no such field"):
    S.build_config(study, {"sparsity.algoritm": "set"})
  with pytest.raises(S.StudyError, match="sets optimiser.lr=0.1"):
    S.build_config(study, {"optimiser.lr": 0.1})


def test_the_arithmetic_refuses_what_it_cannot_solve():
  with pytest.raises(ValueError, match="sparsity.scope='neuron'"):
    E.NetPruneArithmetic(_digits_config(**{"sparsity.ratio": "constant",
                                           "sparsity.scope": "neuron"}),
                         "constant_ratio")
  with pytest.raises(ValueError, match="sparsity.ratio='pq'"):
    E.NetPruneArithmetic(_digits_config(), "constant_ratio")
  arithmetic = E.NetPruneArithmetic(
      _digits_config(**{"sparsity.ratio": "constant"}), "constant_ratio")
  with pytest.raises(ValueError, match="no ratio in"):
    arithmetic.solve(0.7)  # above the initial 0.5
  assert E.target_density({0: 0.3, 1: 0.31, 2: 0.3200004}) == 0.31


# ---- Aggregation ------------------------------------------------------------


def _fake_run(directory, arm, seed, best_test, last_test, final):
  workdir = os.path.join(directory, arm, f"seed{seed}")
  os.makedirs(workdir)
  rows = [{"iteration": 1, "val_accuracy": 0.9, "test_accuracy": best_test,
           "connectivity": 0.5, "sops": 1000.0 * (seed + 1),
           "energy_uj": 0.5 + seed, "grown_survival": 0.1 * seed,
           "pq_index_per_layer": {"a/kernel": 0.1, "b/kernel": 0.2 + seed}},
          {"iteration": 2, "val_accuracy": 0.8, "test_accuracy": last_test,
           "connectivity": final, "sops": 500.0, "energy_uj": 0.25,
           "pq_index_per_layer": {"a/kernel": 0.1, "b/kernel": 0.1}}]
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump({"best_iteration": 1, "best": rows[0], "iterations": rows,
               "selection": "validation"}, f)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump({"seed": seed, "sparsity": {
        "algorithm": arm, "p": 0.5, "q": 1.0, "alpha_r": 0.001, "gamma": 1.0,
        "beta": 0.9}}, f)


def _fake_study():
  return Study(name="fake", scale="small",
               config="experiments/configs/default.py", settings={},
               arms=(Arm("a", {"sparsity.algorithm": "pq_dst"},
                         target="reference", description="A"),
                     Arm("b", {"sparsity.algorithm": "set"},
                         target="init_density", description="B"),
                     Arm("c", {"sparsity.algorithm": "static"},
                         description="C")),
               seeds=(0, 1, 2), paired=("a", "b"))


def test_aggregation_math_by_hand(tmp_path):
  directory = str(tmp_path)
  for seed, (best, last) in enumerate([(0.80, 0.70), (0.82, 0.74),
                                       (0.84, 0.72)]):
    _fake_run(directory, "a", seed, best, last, 0.30 + 0.01 * seed)
  for seed, (best, last) in enumerate([(0.79, 0.69), (0.80, 0.72),
                                       (0.85, 0.69)]):
    _fake_run(directory, "b", seed, best, last, 0.31)
  res = S.aggregate(_fake_study(), directory, (0, 1, 2))
  a, b, c = res["arms"]
  assert a["stats"]["test_accuracy"]["mean"] == pytest.approx(0.82)
  assert a["stats"]["test_accuracy"]["std"] == pytest.approx(0.02)  # n-1
  assert a["stats"]["final_connectivity"]["mean"] == pytest.approx(0.31)
  assert a["stats"]["final_connectivity"]["std"] == pytest.approx(0.01)
  assert a["stats"]["sops"]["mean"] == pytest.approx(2000.0)
  assert a["stats"]["energy_uj"]["mean"] == pytest.approx(1.5)
  assert a["stats"]["final_test_accuracy"]["mean"] == pytest.approx(0.72)
  assert b["stats"]["test_accuracy"]["n"] == 3
  # Paired, best iteration: a - b = 0.01, 0.02, -0.01: mean 1/150; std
  # sqrt(((1/300)^2 + (4/300)^2 + (5/300)^2) / 2) = sqrt(21)/300.
  p = res["paired"]["test_accuracy"]
  assert p["differences"] == pytest.approx([0.01, 0.02, -0.01])
  assert p["mean"] == pytest.approx(1 / 150)
  assert p["std"] == pytest.approx(math.sqrt(21) / 300)
  assert p["exceeds_std"] is False
  # Last iteration: 0.01, 0.02, 0.03: mean 0.02 > std 0.01.
  q = res["paired"]["final_test_accuracy"]
  assert (q["mean"], q["std"]) == (pytest.approx(0.02), pytest.approx(0.01))
  assert q["exceeds_std"] is True
  # The partial study: c has not run; no targets were arranged here.
  assert (c["status"], c["seeds_finished"]) == ("pending", [])
  with open(os.path.join(directory, "results.md")) as f:
    md = f.read()
  assert ("| `a` | A | 3/3 | 82.00 ± 2.00 | 72.00 ± 2.00 | 31.00 ± 1.00 | "
          "50.00 ± 0.00 | 0.002 ± 0.001 | 1.500 ± 1.000 |") in md  # SOPs in M
  assert "| `c` | C | 0/3 (pending) | - | - |" in md
  assert "| test acc. at best val. iteration | 0, 1, 2 | +1.00, +2.00, -1.00 "\
         f"| +0.67 ± {100 * math.sqrt(21) / 300:.2f} | no |" in md
  assert "Not arranged yet" in md
  assert "(waits for the target density)" in md  # b's runs: no target
  # Per iteration, a: connectivity 50 -> mean(30, 31, 32); PQ index, per
  # seed (0.1 + 0.2 + seed) / 2, over seeds 0.15 + mean(0, 1, 2) / 2 = 0.65,
  # then 0.1; grown kept at iteration 1: mean(0, 10, 20)%, none after the
  # last; test accuracy mean(80, 82, 84), then mean(70, 74, 72).
  assert ("| `a` | 50.0 → 31.0 | 0.650 → 0.100 | 10 → · | 82.00 → 72.00 |"
          in md), md
  # The Gaussian reference from a's config (see the test below): c = 1 -
  # 1.001^-2 (1 - 0.152787) = 0.154479.
  assert res["gaussian"]["ratio"] == pytest.approx(0.154479, abs=2e-6)
  assert ("| Gaussian weights (I = 0.1528, c = 0.1545) | 50.0 → 42.3 | "
          "0.153 | - | - |") in md
  assert os.path.exists(os.path.join(directory, "results.png"))
  assert A.mean_std([]) == {"mean": None, "std": None, "n": 0}


def test_the_gaussian_reference_by_hand():
  # E|w|^0.5 = 2^0.25 Gamma(0.75) / sqrt(pi) = 0.822179, E|w| = sqrt(2 / pi)
  # = 0.797885: I = 1 - 0.675978 / 0.797885 = 0.152787.
  assert T.gaussian_index(0.5, 1.0) == pytest.approx(0.152787, abs=1e-6)
  # The library's PQ index of a large normal sample agrees.
  w = np.random.default_rng(0).normal(size=1_000_000).astype(np.float32)
  assert float(pq_index(w)) == pytest.approx(T.gaussian_index(), abs=2e-3)
  # Each net prune keeps 1 - c = 1.001^-2 * (1 - I) = 0.845521.
  sparsity = {"p": 0.5, "q": 1.0, "alpha_r": 0.001, "gamma": 1.0, "beta": 0.9}
  trajectory = T.gaussian_trajectory(0.5, 4, sparsity)
  assert trajectory["connectivity"] == pytest.approx(
      [0.5, 0.5 * 0.845521, 0.5 * 0.845521**2, 0.5 * 0.845521**3], abs=1e-6)
  # gamma scales the ratio; beta caps it.
  assert T.gaussian_trajectory(0.5, 2, {**sparsity, "gamma": 2.0})[
      "ratio"] == pytest.approx(2 * 0.154479, abs=4e-6)
  assert T.gaussian_trajectory(0.5, 2, {**sparsity, "beta": 0.1})[
      "ratio"] == pytest.approx(0.1)


def test_aggregate_only_on_an_empty_study(tmp_path, capsys):
  assert S.main(["--study", "digits_ci", "--dir", str(tmp_path),
                 "--aggregate_only"]) == 0
  with open(tmp_path / "results.json") as f:
    res = json.load(f)
  assert [a["status"] for a in res["arms"]] == ["pending", "pending"]
  assert res["paired"]["test_accuracy"]["n"] == 0
  assert "Results of 0/2 runs" in capsys.readouterr().out


# ---- Targets stay fixed ---------------------------------------------------


def test_targets_stay_fixed_once_runs_used_them(tmp_path, monkeypatch):
  study = _fake_study()
  directory = str(tmp_path)
  for seed in (0, 1, 2):
    _fake_run(directory, "a", seed, 0.8, 0.7, 0.30 + 0.01 * seed)
  targets = S.arrange_targets(study, directory, (0, 1))
  assert targets["reference"]["target"] == 0.305
  assert targets["arms"]["b"] == {"target": "init_density",
                                  "field": "sparsity.init_density",
                                  "value": 0.305}
  # Read back, not recomputed, while the seeds are the same.
  monkeypatch.setattr(S, "compute_targets", None)
  assert S.arrange_targets(study, directory, (0, 1)) == targets
  # Other seeds, and b already ran at the old target: refused.
  os.makedirs(os.path.join(directory, "b", "seed0"))
  with pytest.raises(S.StudyError, match=r"seeds \[0, 1\], but --seeds now "
                     r"gives \[0, 1, 2\], and arms b already ran"):
    S.arrange_targets(study, directory, (0, 1, 2))
  # Nothing ran at it yet: recomputed.
  monkeypatch.undo()
  os.rmdir(os.path.join(directory, "b", "seed0"))
  os.rmdir(os.path.join(directory, "b"))
  assert S.arrange_targets(study, directory, (0, 1, 2))["reference"][
      "target"] == 0.31


def test_a_signal_is_passed_to_each_run_once():
  before = signal.getsignal(signal.SIGTERM)
  child = subprocess.Popen([sys.executable, "-c",
                            "import time; time.sleep(60)"])
  try:
    with S._Signals() as signals:  # pylint: disable=protected-access
      signals.children["a/seed0"] = child
      os.kill(os.getpid(), signal.SIGTERM)
      assert child.wait(timeout=30) == -signal.SIGTERM
      assert signals.received == "SIGTERM"
  finally:
    if child.poll() is None:
      child.kill()
  assert signal.getsignal(signal.SIGTERM) == before


def test_a_figure_of_many_arms_gives_each_its_own_colour():
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  from snn_sparse.training import plotting  # pylint: disable=g-import-not-at-top
  rows = [{"iteration": i, "test_accuracy": 0.5, "val_accuracy": 0.5,
           "connectivity": 0.5} for i in (1, 2)]

  def colours(n):
    fig = plotting.plot_comparison(
        [{"label": f"arm{g}", "runs": [rows]} for g in range(n)])
    return [tuple(line.get_color()) for line in fig.axes[1].get_lines()
            if line.get_label().startswith("arm")]

  fourteen = colours(14)  # the fashion_mnist_ablation arms
  assert len(fourteen) == 14 and len(set(fourteen)) == 14
  assert colours(3) == [tuple(colormaps["tab10"](g)) for g in range(3)]
