"""Mean cross-entropy and TET against hand-computed values."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse import losses


def test_mean_cross_entropy_uses_time_averaged_logits():
  # T=2, B=1: logits average to [0, 0] -> CE = log 2, whatever the steps are.
  logits = jnp.array([[[2.0, -2.0]], [[-2.0, 2.0]]])
  labels = jnp.array([0])
  np.testing.assert_allclose(losses.mean_cross_entropy(logits, labels),
                             math.log(2.0), rtol=1e-6)


def test_tet_is_mean_of_per_step_cross_entropy():
  # Per step: CE([2,-2], 0) = log(1 + e^-4); CE([-2,2], 0) = log(1 + e^4).
  logits = jnp.array([[[2.0, -2.0]], [[-2.0, 2.0]]])
  labels = jnp.array([0])
  expected = 0.5 * (math.log1p(math.exp(-4)) + math.log1p(math.exp(4)))
  np.testing.assert_allclose(losses.tet_loss(logits, labels), expected,
                             rtol=1e-6)
  # With the MSE term towards phi = 1: mean((logits - 1)^2) = (1+9+9+1)/4 = 5.
  np.testing.assert_allclose(
      losses.tet_loss(logits, labels, lamb=0.1),
      0.9 * expected + 0.1 * 5.0, rtol=1e-6)


def test_weights_give_a_weighted_mean():
  # Example 0 has CE log 2; example 1 is confidently right; weight only ex. 0.
  logits = jnp.array([[[0.0, 0.0], [9.0, -9.0]]])
  labels = jnp.array([0, 0])
  for loss in (losses.mean_cross_entropy, losses.tet_loss):
    np.testing.assert_allclose(loss(logits, labels, jnp.array([1.0, 0.0])),
                               math.log(2.0), rtol=1e-6)
    assert float(loss(logits, labels)) < math.log(2.0) / 1.9


def test_losses_validate_shapes_and_names():
  with pytest.raises(ValueError, match=r"\[T, B, classes\]"):
    losses.mean_cross_entropy(jnp.zeros((3, 10)), jnp.zeros(3, jnp.int32))
  with pytest.raises(ValueError, match="Unknown loss 'mse'"):
    losses.get_loss("mse")
  assert losses.get_loss("tet") is losses.tet_loss
