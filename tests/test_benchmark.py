"""The benchmark's smoke mode runs end to end and emits its JSON line."""

import json
import os
import subprocess
import sys

import pytest

from experiments import benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ("train_samples_per_s", "eval_samples_per_s", "train_step_s",
        "rewire_step_s", "compile_s", "peak_rss_mib", "model_gflop_per_sample",
        "achieved_gflops")


def test_smoke_mode_prints_valid_json_with_every_key():
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--smoke"], cwd=ROOT,
      env=env, capture_output=True, text=True, timeout=300, check=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  for key in KEYS:
    assert isinstance(result[key], (int, float)), key
  assert result["train_samples_per_s"] > 0
  assert result["model_gflop_per_sample"] > 0
  assert result["model"] == "convnet" and result["batch_size"] == 4


@pytest.mark.parametrize("precision,remat", [("bf16", "neuron")])
def test_run_with_options(precision, remat):
  out = benchmark.run(**benchmark.SMOKE, algorithm="static", scope="layer",
                      precision=precision, remat=remat)
  assert out["precision"] == precision and out["remat"] == remat
  assert out["rewire_step_s"] == 0.0  # static never rewires
  assert out["train_step_s"] > 0


def test_parse_paired():
  assert benchmark.parse_paired("unroll=1,true") == ("unroll", [1, True])
  assert benchmark.parse_paired("conv_impl=xla,auto") == (
      "conv_impl", ["xla", "auto"])
  with pytest.raises(ValueError, match="FIELD=V1,V2"):
    benchmark.parse_paired("unroll")


def test_parse_input_shape():
  assert benchmark.parse_input_shape(["28", "28", "1"]) == (28, 28, 1)
  assert benchmark.parse_input_shape([]) is None
  for bad in (["28", "28"], ["28", "x", "1"], ["28", "28", "0"]):
    with pytest.raises(ValueError, match="--input_shape must be H,W,C"):
      benchmark.parse_input_shape(bad)


def test_paired_run_times_each_variant():
  smoke = {k: v for k, v in benchmark.SMOKE.items() if k not in (
      "input_shape", "model_overrides", "repeats")}
  smoke["model_name"] = "mlp"
  out = benchmark.run_paired(**smoke, field="unroll", values=[1, True],
                             repeats=2)
  assert set(out["train_step_s"]) == {"1", "True"}
  assert out["ratio_to_first"]["1"] == 1.0
  with pytest.raises(ValueError, match="'unrol' is not a field"):
    benchmark.run_paired(**smoke, field="unrol", values=[1, 2], repeats=1)


def test_step_profile_lists_the_matmuls_of_a_small_model():
  from experiments import step_profile
  rows = step_profile.profile("mlp", batch_size=4, time_steps=2, steps=1)
  kinds = [key for key, _, _ in rows]
  assert any(key.startswith("dot ") for key in kinds), kinds
  assert all(ms >= 0 and calls >= 1 for _, ms, calls in rows)


def test_sweep_settings_default_to_the_models_study_settings():
  pairs = benchmark.sweep_settings("convnet", [], [])
  assert (128, 4) in pairs  # the Fashion-MNIST study's setting
  assert len(pairs) == len(set(pairs)) == 12
  assert benchmark.sweep_settings("resnet19", ["8"], ["2", "4"]) == [
      (8, 2), (8, 4)]
  assert set(benchmark.SWEEPS) == set(benchmark.INPUT_SHAPES)
