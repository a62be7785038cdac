"""Tests for snn_sparse.training.train_state: masking and dense-gradient semantics."""

from __future__ import annotations

from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import optax

from snn_sparse.sparsity.state import SparseState
from snn_sparse.training.train_state import TrainState


def _setup():
  k = jax.random.key(0)
  params = {"Conv_0": {"kernel": jax.random.normal(k, (3, 3, 2, 4)),
                       "bias": jnp.ones(4)},
            "Dense_0": {"kernel": jax.random.normal(jax.random.fold_in(k, 1),
                                                    (8, 3))}}
  masks = {"Conv_0": {"kernel": jax.random.bernoulli(k, 0.5, (3, 3, 2, 4)),
                      "bias": None},
           "Dense_0": {"kernel": jax.random.bernoulli(
               jax.random.fold_in(k, 2), 0.3, (8, 3))}}
  return params, masks


class TrainStateTest(parameterized.TestCase):

  def test_create_masks_params(self):
    params, masks = _setup()
    state = TrainState.create(apply_fn=None, params=params,
                              tx=optax.sgd(0.1),
                              sparsity=SparseState.from_masks(masks))
    m = masks["Dense_0"]["kernel"]
    self.assertTrue(bool(jnp.all(state.params["Dense_0"]["kernel"][~m] == 0)))
    np.testing.assert_array_equal(state.params["Conv_0"]["bias"], jnp.ones(4))
    np.testing.assert_array_equal(
        state.effective_params()["Dense_0"]["kernel"],
        jnp.where(m, params["Dense_0"]["kernel"], 0))
    self.assertEqual(int(state.step), 0)

  @parameterized.named_parameters(
      ("sgd_momentum", lambda: optax.sgd(0.1, momentum=0.9), "trace"),
      ("adam", lambda: optax.adam(1e-2), "mu"),
  )
  def test_masked_weights_stay_zero(self, make_tx, moment):
    params, masks = _setup()
    state = TrainState.create(apply_fn=None, params=params, tx=make_tx(),
                              sparsity=SparseState.from_masks(masks))

    @jax.jit
    def step(state, i):
      grads = jax.tree.map(
          lambda w: jax.random.normal(jax.random.fold_in(jax.random.key(9),
                                                         i), w.shape) + 0.5,
          state.params)
      return state.apply_dense_gradients(grads)

    for i in range(60):
      state = step(state, i)
    self.assertEqual(int(state.step), 60)
    for path in ("Conv_0", "Dense_0"):
      m = masks[path]["kernel"]
      w = state.params[path]["kernel"]
      self.assertTrue(bool(jnp.all(w[~m] == 0)))          # exactly 0
      self.assertTrue(bool(jnp.all(w[m] != params[path]["kernel"][m])))
      # The dense gradient reaches the optimizer at inactive positions.
      mom = getattr(state.opt_state[0], moment)[path]["kernel"]
      self.assertTrue(bool(jnp.all(mom[~m] != 0)))
    # The unmasked bias is trained normally.
    self.assertFalse(bool(jnp.all(state.params["Conv_0"]["bias"] == 1)))

  def test_dense_state(self):
    params, _ = _setup()
    state = TrainState.create(apply_fn=None, params=params,
                              tx=optax.sgd(0.1))
    grads = jax.tree.map(jnp.ones_like, params)
    new = state.apply_dense_gradients(grads)
    np.testing.assert_allclose(new.params["Dense_0"]["kernel"],
                               params["Dense_0"]["kernel"] - 0.1, rtol=1e-6)
