"""Data parallelism on 4 faked CPU devices matches 1 device.

Each test runs a script in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` so that the rest of
the suite keeps a single device.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from experiments.configs import default
    from snn_sparse.training import train

    def config(num_devices, **overrides):
      c = default.get_config()
      c.model.name = "mlp"
      c.model.features = (64,)
      c.time_steps = 2
      c.num_iterations = 2
      c.epochs_per_iteration = 1
      c.log_every_steps = 11
      c.sparsity.rewire_every = 5  # 20 steps per iteration: 5, 10, 15
      c.mesh.num_devices = num_devices
      for k, v in overrides.items():
        setattr(c, k, v)
      return c
    assert jax.device_count() == 4, jax.devices()
""")


def _run(script: str, tmp_path) -> str:
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  out = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(script),
                        str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def _events(path, kind):
  with open(path) as f:
    rows = [json.loads(line) for line in f]
  return [r for r in rows if r["event"] == kind]


def test_four_devices_match_one(tmp_path):
  _run("""
      root = sys.argv[1]
      train.train_and_evaluate(config(4), root + "/d4")
      train.train_and_evaluate(config(1), root + "/d1")
  """, tmp_path)
  runs = {n: str(tmp_path / f"d{n}" / "metrics.jsonl") for n in (1, 4)}
  for kind in ("rewire", "iteration_end"):
    a, b = (_events(runs[n], kind) for n in (1, 4))
    assert a and [r["mask_fingerprint"] for r in a] == [
        r["mask_fingerprint"] for r in b]
    assert [r["total/active"] for r in a] == [r["total/active"] for r in b]
  for a, b in zip(_events(runs[1], "train"), _events(runs[4], "train")):
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
  s1, s4 = (json.load(open(tmp_path / f"d{n}" / "summary.json"))
            for n in (1, 4))
  for a, b in zip(s1["iterations"], s4["iterations"]):
    assert a["connectivity"] == b["connectivity"]
    assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=0.01)
    assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=0.01)
    assert a["sops"] == pytest.approx(b["sops"], rel=1e-3)


def test_checkpoints_move_between_device_counts(tmp_path):
  out = _run("""
      root = sys.argv[1]
      # 4 -> 1: preempted on 4 devices, resumed on 1; and 1 -> 4.
      train.train_and_evaluate(config(4), root + "/a", stop_after_steps=11)
      a = train.train_and_evaluate(config(1), root + "/a")
      train.train_and_evaluate(config(1), root + "/b", stop_after_steps=11)
      b = train.train_and_evaluate(config(4), root + "/b")
      full = train.train_and_evaluate(config(1), root + "/full")
      conn = lambda s: [r["connectivity"] for r in s["iterations"]]
      print(json.dumps([conn(a), conn(b), conn(full)]))
  """, tmp_path)
  a, b, full = json.loads(out.strip().splitlines()[-1])
  assert a == b == full


def test_batch_not_divisible_by_devices_is_refused(tmp_path):
  out = _run("""
      root = sys.argv[1]
      c = config(4)
      c.data.batch_size = 30
      try:
        train.train_and_evaluate(c, root + "/x")
      except ValueError as e:
        print("ERROR:", e)
  """, tmp_path)
  assert ("ERROR: config.data.batch_size: 30 is not divisible by the 4 "
          "devices") in out
