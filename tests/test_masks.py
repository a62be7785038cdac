"""Tests for snn_sparse.sparsity.masks."""

from __future__ import annotations

import math

from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse.sparsity import masks as M


def _convnet_params():
  """A convnet-like tree; insertion order is the network order."""
  shapes = {
      "stem": (3, 3, 3, 16),
      "conv_1": (3, 3, 16, 32),
      "conv_2": (3, 3, 32, 64),
      "shortcut": (1, 1, 16, 64),
      "fc": (256, 128),
      "head": (128, 10),
  }
  params = {}
  for name, shape in shapes.items():
    params[name] = {"kernel": jnp.ones(shape), "bias": jnp.zeros(shape[-1])}
  params["bn"] = {"scale": jnp.ones(16), "bias": jnp.zeros(16)}
  return params


class PathTest(parameterized.TestCase):

  def test_existing_helpers(self):
    params = {"Conv_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)},
              "BatchNorm_0": {"scale": jnp.ones(2)},
              "SpikingNeuron_0": {"w": jnp.ones(())}}
    self.assertEqual(M.prunable_paths(params), ["Conv_0/kernel"])
    self.assertTrue(M.is_prunable("a/b/kernel"))
    self.assertFalse(M.is_prunable("a/kernel_scale"))
    masks = M.full_masks(params)
    self.assertIsNone(masks["Conv_0"]["bias"])
    self.assertIsNone(masks["BatchNorm_0"]["scale"])
    self.assertEqual(M.masked_paths(masks), ["Conv_0/kernel"])
    m = jnp.array([[True, False], [False, True]])
    masks["Conv_0"]["kernel"] = m
    out = M.apply_masks(params, masks)
    np.testing.assert_array_equal(out["Conv_0"]["kernel"], m.astype(float))
    np.testing.assert_array_equal(out["Conv_0"]["bias"], jnp.ones(2))
    self.assertIs(M.apply_masks(params, None), params)

  def test_ordered_paths_use_insertion_order(self):
    params = {"stem": {"kernel": jnp.ones((2, 2))},
              "block": {"kernel": jnp.ones((2, 2))},
              "head": {"kernel": jnp.ones((2, 2))}}
    self.assertEqual(M.ordered_prunable_paths(params),
                     ["stem/kernel", "block/kernel", "head/kernel"])
    # jax.tree order is sorted: block, head, stem.
    self.assertEqual(M.prunable_paths(params),
                     ["block/kernel", "head/kernel", "stem/kernel"])


class DensityTest(parameterized.TestCase):

  def test_erk_by_hand(self):
    # Scales (4+4)/16 = 0.5 and (8+2)/16 = 0.625; sizes 16, 16; budget 16
    # = eps * 18 -> eps = 8/9.
    params = {"a": {"kernel": jnp.ones((4, 4))},
              "b": {"kernel": jnp.ones((8, 2))}}
    d = M.layer_densities(params, method="erk", density=0.5)
    self.assertAlmostEqual(d["a/kernel"], 0.5 * 8 / 9)
    self.assertAlmostEqual(d["b/kernel"], 0.625 * 8 / 9)

  def test_er_vs_erk_on_conv(self):
    params = {"c": {"kernel": jnp.ones((3, 3, 4, 4))},
              "d": {"kernel": jnp.ones((36, 4))}}
    er = M.layer_densities(params, method="er", density=0.3)
    erk = M.layer_densities(params, method="erk", density=0.3)
    # ER ignores the 3x3 extent: c scales as (4+4)/16, d as (36+4)/144.
    self.assertAlmostEqual(er["c/kernel"] / er["d/kernel"],
                           (8 / 16) / (40 / 144))
    self.assertAlmostEqual(erk["c/kernel"] / erk["d/kernel"],
                           (14 / 144) / (40 / 144))

  def test_capping(self):
    # Scales 1 and 0.02, sizes 4 and 10000: the small layer would get
    # 24.5; capped at 1, the big one gets (5002 - 4) / 10000.
    params = {"small": {"kernel": jnp.ones((2, 2))},
              "big": {"kernel": jnp.ones((100, 100))}}
    d = M.layer_densities(params, method="erk", density=0.5)
    self.assertEqual(d["small/kernel"], 1.0)
    self.assertAlmostEqual(d["big/kernel"], 4998 / 10000)

  @parameterized.parameters("er", "erk", "uniform")
  def test_global_target_and_cap(self, method):
    params = _convnet_params()
    for density in (0.5, 0.1, 0.9):
      d = M.layer_densities(params, method=method, density=density)
      counts = M.layer_counts(params, method=method, density=density)
      sizes = {p: math.prod(params[p.split("/")[0]]["kernel"].shape)
               for p in d}
      total = sum(sizes.values())
      self.assertLessEqual(max(d.values()), 1.0)
      self.assertEqual(sum(counts.values()), round(density * total))
      for p in d:
        self.assertIn(counts[p], (math.floor(d[p] * sizes[p]),
                                  math.ceil(d[p] * sizes[p])))
      if method == "uniform":
        self.assertTrue(all(abs(v - density) < 1e-12 for v in d.values()))

  def test_bad_args(self):
    params = _convnet_params()
    with pytest.raises(ValueError, match="'method'"):
      M.layer_densities(params, method="random")
    with pytest.raises(ValueError, match="'density'"):
      M.layer_densities(params, density=0.0)
    with pytest.raises(ValueError, match="'density'"):
      M.layer_densities(params, density=1.5)


class InitMasksTest(parameterized.TestCase):

  def test_erk_masks_exact(self):
    params = _convnet_params()
    key = jax.random.key(0)
    masks = M.init_masks(params, method="erk", density=0.5, key=key)
    counts = M.layer_counts(params, method="erk", density=0.5)
    stats = M.mask_stats(params, masks)
    for path, c in counts.items():
      self.assertEqual(int(stats["layers"][path]["active"]), c)
      self.assertLessEqual(float(stats["layers"][path]["density"]), 1.0)
    self.assertAlmostEqual(float(stats["masked_density"]), 0.5, delta=5e-4)
    self.assertIsNone(masks["bn"]["scale"])
    self.assertIsNone(masks["stem"]["bias"])
    self.assertEqual(masks["stem"]["kernel"].dtype, jnp.bool_)
    # Reproducible, and a different key gives a different draw.
    again = M.init_masks(params, method="erk", density=0.5, key=key)
    np.testing.assert_array_equal(again["fc"]["kernel"], masks["fc"]["kernel"])
    other = M.init_masks(params, method="erk", density=0.5,
                         key=jax.random.key(1))
    self.assertFalse(bool(jnp.all(other["fc"]["kernel"]
                                  == masks["fc"]["kernel"])))

  def test_positions_are_spread(self):
    # Random permutation, not a block: both halves of a layer get entries.
    params = {"fc": {"kernel": jnp.ones((100, 100))}}
    m = M.init_masks(params, method="uniform", density=0.2,
                     key=jax.random.key(3))["fc"]["kernel"]
    self.assertEqual(int(m.sum()), 2000)
    self.assertBetween(int(m[:50].sum()), 800, 1200)

  def test_dense_first_last(self):
    params = _convnet_params()
    masks = M.init_masks(params, method="erk", density=0.3,
                         key=jax.random.key(0), dense_first=True,
                         dense_last=True)
    self.assertIsNone(masks["stem"]["kernel"])
    self.assertIsNone(masks["head"]["kernel"])
    self.assertIsNotNone(masks["fc"]["kernel"])
    stats = M.mask_stats(params, masks)
    self.assertAlmostEqual(float(stats["masked_density"]), 0.3, delta=3e-4)
    # Honest totals: the dense-kept kernels count as fully active.
    dense_size = 3 * 3 * 3 * 16 + 128 * 10
    self.assertEqual(int(stats["total"]),
                     int(stats["masked_total"]) + dense_size)
    self.assertEqual(int(stats["active"]),
                     int(stats["masked_active"]) + dense_size)
    self.assertEqual(float(stats["layers"]["stem/kernel"]["density"]), 1.0)

  def test_dense_method(self):
    params = _convnet_params()
    masks = M.init_masks(params, method="dense", density=0.5,
                         key=jax.random.key(0))
    self.assertTrue(bool(jnp.all(masks["fc"]["kernel"])))


class StatsTest(parameterized.TestCase):

  def test_stats_by_hand(self):
    params = {
        "Dense_0": {"kernel": jnp.array([[1., 2.], [3., 0.]]),
                    "bias": jnp.array([0., 5.])},
        "Dense_1": {"kernel": jnp.array([[1., 1.]])},
        "BatchNorm_0": {"scale": jnp.array([1., 0., 2.])},
    }
    masks = {
        "Dense_0": {"kernel": jnp.array([[True, False], [True, True]]),
                    "bias": None},
        "Dense_1": {"kernel": None},
        "BatchNorm_0": {"scale": None},
    }
    s = jax.jit(M.mask_stats)(params, masks)
    self.assertEqual(int(s["masked_active"]), 3)
    self.assertEqual(int(s["masked_total"]), 4)
    self.assertAlmostEqual(float(s["masked_density"]), 0.75)
    self.assertEqual(int(s["active"]), 5)     # Dense_1 is prunable, unmasked.
    self.assertEqual(int(s["total"]), 6)
    # Nonzero over all params: Dense_0 kernel 1, 3 (2 masked, 0 zero) = 2;
    # bias 1; Dense_1 2; BN 2 -> 7 of 11.
    self.assertEqual(int(s["nonzero"]), 7)
    self.assertEqual(int(s["num_params"]), 11)
    self.assertEqual(sorted(s["layers"]), ["Dense_0/kernel", "Dense_1/kernel"])
    self.assertAlmostEqual(float(s["layers"]["Dense_0/kernel"]["density"]),
                           0.75)

  def test_stats_dense(self):
    params = {"Dense_0": {"kernel": jnp.ones((2, 3))}}
    s = M.mask_stats(params, None)
    self.assertEqual(int(s["active"]), 6)
    self.assertEqual(float(s["density"]), 1.0)
    self.assertEqual(int(s["masked_total"]), 0)


def test_fingerprint_tells_masks_apart():
  m = {"a": {"kernel": jnp.array([True, False, True]), "bias": None},
       "b": {"kernel": jnp.ones((2, 2), bool)}}
  same = jax.tree.map(lambda x: x, m, is_leaf=M.is_none)
  moved = {"a": {"kernel": jnp.array([True, True, False]), "bias": None},
           "b": m["b"]}
  assert int(M.fingerprint(m)) == int(M.fingerprint(same))
  assert int(M.fingerprint(m)) != int(M.fingerprint(moved))
  assert int(M.fingerprint(None)) == 0
  many = {f"l{i}": {"kernel": jnp.ones((3,), bool)} for i in range(12)}
  assert int(M.fingerprint(many)) > 0
