"""Metric reductions against hand-computed values."""

import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse import metrics


def test_batch_sums_unfold_time_and_apply_the_mask():
  # T=2, B=3. Ops per folded sample [t0b0, t0b1, t0b2, t1b0, t1b1, t1b2].
  inter = {
      "Conv_0": {"macs": (jnp.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0]),)},
      "Block_0": {"Conv_1": {"sops": (jnp.array([1.0, 1, 1, 2, 2, 2]),)}},
      "SpikingNeuron_0": {"firing_rate": (jnp.array([[0.2, 0.4, 0.6],
                                                     [0.4, 0.6, 0.8]]),)},
  }
  sums = metrics.batch_sums(inter, 2, jnp.array([1.0, 1.0, 0.0]))
  # Per sample over time: macs [11, 22, 33] -> 33; sops [3, 3, 3] -> 6;
  # rates [0.3, 0.5, 0.7] -> 0.8 (the padded third sample is dropped).
  np.testing.assert_allclose(sums["macs"]["Conv_0"], 33.0)
  np.testing.assert_allclose(sums["sops"]["Block_0/Conv_1"], 6.0)
  np.testing.assert_allclose(sums["firing_rate"]["SpikingNeuron_0"], 0.8)


def test_accumulate_and_finalize():
  batch = {"count": 2.0, "correct": 1.0, "loss": 3.0,
           "sops": {"a": 100.0, "b": 300.0}, "macs": {"c": 50.0},
           "firing_rate": {"n": 0.5}}
  total = metrics.accumulate(metrics.accumulate(None, batch), batch)
  out = metrics.finalize(total)
  assert out["examples"] == 4
  assert out["accuracy"] == pytest.approx(0.5)
  assert out["loss"] == pytest.approx(1.5)
  assert out["sops"] == pytest.approx(200.0)  # (200 + 600) / 4
  assert out["macs"] == pytest.approx(25.0)
  assert out["firing_rate"] == {"n": pytest.approx(0.25)}
  # 0.9 pJ * 200 + 4.6 pJ * 25 = 295 pJ = 2.95e-4 uJ.
  assert out["energy_uj"] == pytest.approx(2.95e-4)
