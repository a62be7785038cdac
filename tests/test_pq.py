"""Tests for snn_sparse.sparsity.pq: values computed by hand."""

from __future__ import annotations

import math

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse.sparsity import pq
from snn_sparse.sparsity import layout as layout_lib


def _gaussian_i(p=0.5, q=1.0):
  """Closed-form PQ index of a standard normal (E|w|^s formula)."""
  def moment(s):
    return 2**(s / 2) * math.gamma((s + 1) / 2) / math.sqrt(math.pi)
  return 1 - moment(p)**(1 / p) / moment(q)**(1 / q)


class PQIndexTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_one_hot_layer(self):
    # mean(|w|^.5) = 1/4, squared 1/16; mean(|w|) = 1/4 -> 1 - (1/16)/(1/4).
    f = self.variant(lambda w: pq.pq_index(w))
    np.testing.assert_allclose(f(jnp.array([1., 0, 0, 0])), 0.75, rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_masked_layer(self):
    f = self.variant(lambda w, m: pq.pq_index(w, m))
    # Active [1, 0]: (1/2)^2 / (1/2) = 1/2 -> I = 0.5.
    np.testing.assert_allclose(
        f(jnp.array([1., 0, 0, 0]), jnp.array([True, True, False, False])),
        0.5, rtol=1e-6)
    # Active [4, 1, 1] (100 masked out): mean sqrt = 4/3, squared 16/9,
    # mean = 2 -> I = 1 - 8/9.
    np.testing.assert_allclose(
        f(jnp.array([4., -1, 1, 100]), jnp.array([True, True, True, False])),
        1 / 9, rtol=1e-5)

  def test_p1_q2(self):
    # w = [3, 4]: mean|w| = 3.5, sqrt(mean w^2) = sqrt(12.5).
    got = pq.pq_index(jnp.array([3., 4.]), p=1.0, q=2.0)
    np.testing.assert_allclose(got, 1 - 3.5 / math.sqrt(12.5), rtol=1e-5)

  def test_equal_magnitudes_zero(self):
    np.testing.assert_allclose(pq.pq_index(jnp.array([-2., 2, 2, -2])), 0.0,
                               atol=1e-7)

  @chex.variants(with_jit=True, without_jit=True)
  def test_neuron_scope(self):
    # Units are columns. col0 = [1, 0] -> 0.5; col1 active [2] -> 0;
    # col2 all zero -> 0; col3 = [3, 1] -> 1 - ((sqrt3+1)/2)^2 / 2.
    w = jnp.array([[1., 2, 0, 3], [0, 8, 0, 1]])
    m = jnp.array([[True, True, True, True], [True, False, True, True]])
    got = self.variant(lambda w, m: pq.pq_index(w, m, scope="neuron"))(w, m)
    col3 = 1 - ((math.sqrt(3) + 1) / 2)**2 / 2
    np.testing.assert_allclose(got, [0.5, 0.0, 0.0, col3], rtol=1e-5,
                               atol=1e-7)
    self.assertEqual(got.shape, (4,))

  def test_neuron_scope_conv_kernel(self):
    w = jax.random.normal(jax.random.key(0), (3, 3, 4, 5))
    got = pq.pq_index(w, scope="neuron")
    want = [pq.pq_index(w[..., j]) for j in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-5)

  def test_empty_and_zero_units(self):
    w = jnp.array([1., 2., 3.])
    self.assertEqual(float(pq.pq_index(w, jnp.zeros(3, bool))), 0.0)
    self.assertEqual(float(pq.pq_index(jnp.zeros(3))), 0.0)

  def test_no_nans_under_grad(self):
    def f(w):
      return jnp.sum(pq.pq_index(w, scope="neuron"))
    w = jnp.array([[0., 1.], [0., 0.], [2., 0.]])
    g = jax.jit(jax.grad(f))(w)
    self.assertTrue(bool(jnp.all(jnp.isfinite(g))))
    g0 = jax.grad(lambda w: pq.pq_index(w))(jnp.zeros(4))
    self.assertTrue(bool(jnp.all(jnp.isfinite(g0))))

  def test_scale_invariance(self):
    w = jax.random.normal(jax.random.key(1), (64, 8))
    m = jax.random.bernoulli(jax.random.key(2), 0.6, w.shape)
    for scope in ("layer", "neuron"):
      a = pq.pq_index(w, m, scope=scope)
      b = pq.pq_index(3.7e-3 * w, m, scope=scope)
      np.testing.assert_allclose(a, b, rtol=1e-4)

  def test_cloning_invariance(self):
    w = jax.random.normal(jax.random.key(3), (50, 6))
    np.testing.assert_allclose(pq.pq_index(jnp.concatenate([w, w])),
                               pq.pq_index(w), rtol=1e-4)
    np.testing.assert_allclose(
        pq.pq_index(jnp.concatenate([w, w], axis=0), scope="neuron"),
        pq.pq_index(w, scope="neuron"), rtol=1e-4)

  def test_gaussian_value(self):
    w = jax.random.normal(jax.random.key(4), (200_000,))
    self.assertAlmostEqual(_gaussian_i(), 0.1528, places=3)
    np.testing.assert_allclose(pq.pq_index(w), _gaussian_i(), atol=3e-3)

  def test_more_compressible_is_higher(self):
    spread = jnp.array([1., 1, 1, 1, 1, 1, 1, 1])
    peaked = jnp.array([8., 1, 1, 1, 1, 1, 1, 1])
    self.assertGreater(float(pq.pq_index(peaked)),
                       float(pq.pq_index(spread)))


class RatioTest(parameterized.TestCase):

  def test_bound_and_ratio_by_hand(self):
    # I = 0.75 (one-hot of 4). r/d = 1.001^-2 * (1 - 0.75)^1.
    w = jnp.array([1., 0, 0, 0])
    frac = 1.001**-2 * 0.25
    np.testing.assert_allclose(pq.retained_bound(w), 4 * frac, rtol=1e-6)
    np.testing.assert_allclose(pq.rewiring_ratio(w), 1 - frac, rtol=1e-6)
    np.testing.assert_allclose(pq.rewiring_ratio(w, gamma=0.5),
                               0.5 * (1 - frac), rtol=1e-6)
    np.testing.assert_allclose(pq.rewiring_ratio(w, beta=0.3), 0.3)
    # Masked: 2 active, I = 0.5, r = 2 * 1.001^-2 * 0.5.
    m = jnp.array([True, True, False, False])
    np.testing.assert_allclose(pq.retained_bound(w, m), 1.001**-2, rtol=1e-6)

  def test_general_exponents(self):
    # p=1, q=2: r/d = (1+a)^-2 * (1-I)^2.
    index = jnp.array(0.2)
    np.testing.assert_allclose(
        pq.retained_fraction(index, p=1.0, q=2.0, alpha_r=0.1),
        1.1**-2 * 0.8**2, rtol=1e-6)
    np.testing.assert_allclose(
        pq.bound_from_index(index, 10, p=1.0, q=2.0, alpha_r=0.1),
        10 * 1.1**-2 * 0.8**2, rtol=1e-6)

  def test_ratio_at_zero_index_is_slack(self):
    # I = 0: c = 1 - (1+alpha_r)^(-q/(q-p)) = 1 - 1.001^-2.
    np.testing.assert_allclose(pq.ratio_from_index(jnp.zeros(())),
                               1 - 1.001**-2, rtol=1e-4)

  def test_gaussian_ratio(self):
    w = jax.random.normal(jax.random.key(5), (100_000,))
    want = 1 - 1.001**-2 * (1 - _gaussian_i())
    np.testing.assert_allclose(pq.rewiring_ratio(w), want, atol=3e-3)
    self.assertAlmostEqual(want, 0.1545, places=3)

  def test_count_floor(self):
    k = pq.rewire_count(jnp.array([0.25, 0.5, 0.999, 0.0]),
                        jnp.array([10, 3, 4, 7]))
    np.testing.assert_array_equal(k, [2, 1, 3, 0])
    self.assertEqual(k.dtype, jnp.int32)

  def test_ceil_bound_rounding_by_hand(self):
    # I = 0.1528 (Gaussian): r/d = 1.001**-2 * 0.8472 = 0.845509.
    # d = 1000: exact r = 845.509 -> c = 0.154491, k = floor(154.49) = 154;
    # Diao's ceil(r) = 846 -> c = 0.154, k = 154. d = 7: exact r = 5.9186
    # -> c = 0.15449, k = floor(1.0814) = 1; ceil(r) = 6 -> c = 1/7, k = 1.
    # d = 20: r = 16.91 -> k = floor(3.09) = 3; ceil -> 17, c = 0.15, k = 3.
    # d = 2: r = 1.691 -> k = floor(0.309) = 0; ceil -> 2, c = 0, k = 0.
    index = jnp.full((4,), 0.1528)
    d = jnp.array([1000, 7, 20, 2])
    exact = pq.ratio_from_index(index)
    np.testing.assert_allclose(exact, 1 - 1.001**-2 * 0.8472, rtol=1e-5)
    ceil = pq.ratio_from_index(index, d=d, bound_rounding="ceil")
    np.testing.assert_allclose(ceil, [0.154, 1 / 7, 0.15, 0.0], rtol=1e-5)
    np.testing.assert_array_equal(pq.rewire_count(ceil, d), [154, 1, 3, 0])
    # An integer c*d up to float rounding counts as that integer.
    np.testing.assert_array_equal(
        pq.rewire_count(jnp.float32(3 / 20) * 0.99999997, 20), 3)
    with pytest.raises(ValueError, match="needs the active counts 'd'"):
      pq.ratio_from_index(index, bound_rounding="ceil")
    with pytest.raises(ValueError, match="'bound_rounding'"):
      pq.ratio_from_index(index, bound_rounding="round")

  def test_count_stochastic(self):
    keys = jax.random.split(jax.random.key(0), 4000)
    ks = jax.vmap(lambda key: pq.rewire_count(
        jnp.array(0.25), jnp.array(10), rounding="stochastic", key=key))(keys)
    self.assertEqual(set(np.unique(ks).tolist()), {2, 3})
    self.assertAlmostEqual(float(jnp.mean(ks)), 2.5, delta=0.05)

  def test_count_clipped_to_d(self):
    k = pq.rewire_count(jnp.array(1.0), jnp.array(5), rounding="stochastic",
                        key=jax.random.key(0))
    self.assertEqual(int(k), 5)

  @parameterized.parameters(
      (dict(p=0.0), "'p'"), (dict(p=-1.0), "'p'"), (dict(q=0.5), "'q'"),
      (dict(p=1.0, q=0.5), "'q'"), (dict(scope="unit"), "'scope'"))
  def test_validation(self, kwargs, name):
    with pytest.raises(ValueError, match=name):
      pq.pq_index(jnp.ones(3), **kwargs)

  def test_validation_ratio_and_count(self):
    with pytest.raises(ValueError, match="'beta'"):
      pq.rewiring_ratio(jnp.ones(3), beta=1.5)
    with pytest.raises(ValueError, match="'alpha_r'"):
      pq.rewiring_ratio(jnp.ones(3), alpha_r=-0.1)
    with pytest.raises(ValueError, match="'rounding'"):
      pq.rewire_count(0.1, 5, rounding="ceil")
    with pytest.raises(ValueError, match="'key'"):
      pq.rewire_count(0.1, 5, rounding="stochastic")


def _tree():
  k = jax.random.key(7)
  params = {
      "Conv_0": {"kernel": jax.random.normal(k, (3, 3, 2, 4)),
                 "bias": jnp.ones(4)},
      "Dense_0": {"kernel": jax.random.normal(jax.random.fold_in(k, 1),
                                              (8, 3))},
  }
  masks = {
      "Conv_0": {"kernel": jax.random.bernoulli(k, 0.5, (3, 3, 2, 4)),
                 "bias": None},
      "Dense_0": {"kernel": jnp.ones((8, 3), bool)},
  }
  return params, masks


class TreeTest(parameterized.TestCase):

  def test_layer_and_neuron(self):
    params, masks = _tree()
    for scope in ("layer", "neuron"):
      got = pq.tree_pq_index(params, masks, scope=scope)
      self.assertEqual(sorted(got), ["Conv_0/kernel", "Dense_0/kernel"])
      np.testing.assert_allclose(
          got["Conv_0/kernel"],
          pq.pq_index(params["Conv_0"]["kernel"], masks["Conv_0"]["kernel"],
                      scope=scope), rtol=1e-5)
    self.assertEqual(pq.tree_pq_index(params, masks, scope="neuron")[
        "Dense_0/kernel"].shape, (3,))

  def test_global_is_concatenation(self):
    params, masks = _tree()
    w = jnp.concatenate([params["Conv_0"]["kernel"].ravel(),
                         params["Dense_0"]["kernel"].ravel()])
    m = jnp.concatenate([masks["Conv_0"]["kernel"].ravel(),
                         masks["Dense_0"]["kernel"].ravel()])
    got = pq.tree_pq_index(params, masks, scope="global")
    for v in got.values():
      np.testing.assert_allclose(v, pq.pq_index(w, m), rtol=1e-5)
    r = pq.tree_retained_bound(params, masks, scope="global")
    np.testing.assert_allclose(sum(r.values()), pq.retained_bound(w, m),
                               rtol=1e-5)
    k = pq.tree_rewire_count(params, masks, scope="global")
    self.assertEqual(k.shape, ())
    self.assertEqual(int(k), int(pq.rewire_count(pq.rewiring_ratio(w, m),
                                                 jnp.sum(m))))

  def test_counts_and_ratio(self):
    params, masks = _tree()
    c = pq.tree_rewiring_ratio(params, masks, scope="neuron")
    k = pq.tree_rewire_count(params, masks, scope="neuron")
    d = jnp.sum(masks["Conv_0"]["kernel"], axis=(0, 1, 2))
    np.testing.assert_array_equal(
        k["Conv_0/kernel"], jnp.floor(c["Conv_0/kernel"] * d).astype(int))

  def test_dense_masks_none(self):
    params, _ = _tree()
    got = pq.tree_pq_index(params, None)
    np.testing.assert_allclose(got["Conv_0/kernel"],
                               pq.pq_index(params["Conv_0"]["kernel"]),
                               rtol=1e-5)

  def test_unit_layout_roundtrip(self):
    params, masks = _tree()
    for scope in layout_lib.SCOPES:
      layout = layout_lib.UnitLayout(masks, scope)
      back = layout.unrows(layout.rows(params))
      np.testing.assert_array_equal(back["Conv_0"]["kernel"],
                                    params["Conv_0"]["kernel"])
      self.assertIsNone(back["Conv_0"]["bias"])
    rows = layout_lib.UnitLayout(masks, "neuron").rows(params)
    np.testing.assert_array_equal(rows["Conv_0/kernel"][2],
                                  params["Conv_0"]["kernel"][..., 2].ravel())
