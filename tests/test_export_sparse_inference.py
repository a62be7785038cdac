"""The sparse formulations of dense layers that the benchmark times
(``experiments/sparse_inference.py``, ``benchmark --sparse_inference``)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments import benchmark
from experiments import sparse_inference
from snn_sparse import models

import export_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL = np.float32([[1.0, 0.0],
                     [2.0, 3.0],
                     [0.0, 4.0]])
MASK = KERNEL != 0


def test_ell_lists_each_outputs_active_inputs():
  idx, w = sparse_inference.ell(KERNEL, MASK)
  np.testing.assert_array_equal(idx, [[0, 1], [1, 2]])
  np.testing.assert_array_equal(w, [[1.0, 2.0], [3.0, 4.0]])
  # A wider fan-in pads with index 0 and weight 0.
  mask = MASK.copy()
  mask[0, 1] = True
  idx, w = sparse_inference.ell(KERNEL, mask)
  np.testing.assert_array_equal(idx, [[0, 1, 0], [0, 1, 2]])
  np.testing.assert_array_equal(w, [[1.0, 2.0, 0.0], [0.0, 3.0, 4.0]])


def test_gather_and_bcoo_products_equal_the_dense_one():
  x = np.float32([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])
  expected = [[1 + 4, 6 + 12], [-2, -3 + 2]]
  np.testing.assert_allclose(
      sparse_inference.gather_matmul(x, *sparse_inference.ell(KERNEL, MASK)),
      expected)
  np.testing.assert_allclose(
      sparse_inference.bcoo_matmul(x, sparse_inference.bcoo(KERNEL, MASK)),
      expected)


@pytest.mark.parametrize("formulation", sparse_inference.FORMULATIONS)
def test_sparse_mlp_equals_the_model(formulation):
  model = models.create("mlp", features=(32, 16))
  x, _ = export_models.digits_test(40)
  variables = export_models.init_variables(model, x[:, :1])
  masks = export_models.random_masks(variables["params"], 0.3)
  # Scaled as the benchmark does, so that the network fires.
  params = jax.tree.map(lambda m, w: w if m is None else w * m * 4.0, masks,
                        variables["params"], is_leaf=lambda v: v is None)
  expected = np.asarray(model.apply({"params": params}, x, train=False))
  layers = sparse_inference.sparse_layers(params, masks, formulation)
  got = np.asarray(jax.jit(lambda ops, x: sparse_inference.sparse_mlp_apply(
      model, ops, x, formulation))(layers, x))
  np.testing.assert_allclose(got, expected, atol=1e-5)
  assert np.abs(expected).max() > 0  # the biases are 0: spikes got through


def test_benchmark_rows():
  rows = benchmark.sparse_inference(
      connectivities=(0.3,), batch_sizes=(2, 5), time_steps=2,
      input_shape=(8, 8, 1), repeats=2,
      model_overrides={"features": (16, 8)})
  assert [(r["connectivity"], r["batch_size"]) for r in rows] == [
      (0.3, 2), (0.3, 5)]
  for row in rows:
    for key in ("dense_s", "gather_s", "bcoo_s"):
      assert row[key] > 0
    assert row["gather_speedup"] == pytest.approx(row["dense_s"]
                                                  / row["gather_s"])
    assert row["gather_max_abs_diff"] < 1e-4
    assert row["bcoo_max_abs_diff"] < 1e-4
  with pytest.raises(ValueError, match="times the MLP"):
    benchmark.sparse_inference("convnet")


def test_command_line_prints_the_rows():
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--sparse_inference",
       "--model", "mlp", "--input_shape", "8,8,1", "--time_steps", "2",
       "--repeats", "1", "--sparse_batch_sizes", "3",
       "--sparse_connectivities", "0.2"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=True)
  rows = json.loads(out.stdout.strip().splitlines()[-1])["sparse_inference"]
  assert len(rows) == 1 and rows[0]["batch_size"] == 3
  assert rows[0]["connectivity"] == 0.2
  assert "gather_speedup" in out.stdout
