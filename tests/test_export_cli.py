"""``python -m experiments.export`` on a real (tiny) training workdir."""

import json
import os
import subprocess
import sys

import nir
import numpy as np
import pytest

from experiments import export
from experiments.configs import digits_convnet_avg
from snn_sparse.export import compressed, workdir as workdir_lib
from snn_sparse.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(name="workdir", scope="module")
def _workdir(tmp_path_factory):
  """digits_convnet_avg, shrunk: 1 iteration of 1 epoch, a small convnet."""
  config = digits_convnet_avg.get_config()
  config.num_iterations = 1
  config.epochs_per_iteration = 1
  config.model.features = (4, 8)
  config.model.hidden = 16
  config.sparsity.rewire_every = 10  # one event per iteration
  path = str(tmp_path_factory.mktemp("run"))
  train.train_and_evaluate(config, path)
  return path


@pytest.fixture(name="restored", scope="module")
def _restored(workdir):
  return workdir_lib.restore(workdir, "best")


def test_restore_gives_the_best_iteration(workdir, restored):
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert restored.meta["iteration"] == summary["best_iteration"] == 1
  assert restored.step == 20 and restored.model.pooling == "avg"
  assert restored.masks["Conv_1"]["kernel"].dtype == bool
  with pytest.raises(FileNotFoundError, match="does not exist"):
    workdir_lib.restore(os.path.join(workdir, "nothing"))
  config = workdir_lib.model_config(restored)
  assert config["model"]["features"] == [4, 8]
  assert config["input_shape"] == [8, 8, 1] and config["time_steps"] == 4


def test_sparse_export_round_trips(restored, tmp_path):
  out = tmp_path / "model.npz"
  result = export.export_sparse(restored, str(out), "float32", verify=True)
  assert result["logits_bit_identical"] and result["within_tolerance"]
  assert result["test_examples"] == 360
  assert result["test_accuracy_change"] == 0.0
  assert result["file_bytes"] == os.path.getsize(out)
  assert compressed.read_header(out)["config"]["model"]["pooling"] == "avg"
  result = export.export_sparse(restored, str(tmp_path / "q.npz"), "int8",
                                verify=True, examples=100)
  assert result["test_examples"] == 100
  assert result["file_bytes"] < os.path.getsize(out)


def test_nir_export_matches_and_writes_the_peer_reference(restored,
                                                          tmp_path):
  out, ref = tmp_path / "model.nir", tmp_path / "ref.npz"
  result = export.export_nir(restored, str(out), 1e-4, verify=True,
                             examples=60, reference=str(ref))
  assert result["spike_mismatches"] == 0 and result["spikes"] > 0
  assert result["max_abs_logit_diff"] < 1e-5
  graph = nir.read(out)
  reference = np.load(ref)
  assert reference["inputs"].shape == (4, 60, 1, 8, 8)   # [T, N, C, H, W]
  assert reference["logits"].shape == (4, 60, 10)
  assert reference["spikes/SpikingNeuron_1"].shape == (4, 60, 8, 4, 4)
  assert set(graph.nodes) >= {"SpikingNeuron_0", "AvgPool_0", "Flatten_0"}


def test_command_line(workdir, tmp_path):
  out = tmp_path / "cli.nir"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  run = subprocess.run(
      [sys.executable, "-m", "experiments.export", "--workdir", workdir,
       "--checkpoint", "latest", "--format", "nir", "--out", str(out),
       "--examples", "20"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=True)
  line = json.loads(run.stdout.strip().splitlines()[-1])
  assert line["format"] == "nir" and line["spike_mismatches"] == 0
  assert line["checkpoint"] == "latest" and line["step"] == 20
  assert out.exists()
  # A workdir that is not one: one clear error, exit status 1.
  bad = subprocess.run(
      [sys.executable, "-m", "experiments.export", "--workdir",
       str(tmp_path / "none"), "--format", "sparse", "--out",
       str(tmp_path / "x.npz")],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert bad.returncode == 1
  assert "config.json does not exist" in bad.stderr
  assert "Traceback" not in bad.stderr
