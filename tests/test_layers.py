"""Time folding, the spiking-neuron layer (LIF / IF / PLIF) and tdBN."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse import layers, neurons

import test_neurons


def test_fold_unfold_round_trip():
  x = jnp.arange(2 * 3 * 4).reshape(2, 3, 4)
  np.testing.assert_array_equal(layers.fold_time(x), x.reshape(6, 4))
  np.testing.assert_array_equal(layers.unfold_time(layers.fold_time(x), 2), x)
  y = layers.time_folded(lambda z: z * 2, x)
  np.testing.assert_array_equal(y, 2 * x)
  with pytest.raises(ValueError, match="time-major"):
    layers.fold_time(jnp.zeros(3))


def test_repeat_time():
  x = jnp.arange(6.0).reshape(2, 3)
  y = layers.repeat_time(x, 4)
  assert y.shape == (4, 2, 3)
  np.testing.assert_array_equal(y[3], x)


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_plif_and_lif_layer_golden_trace(kind):
  # tau = 4 (PLIF: w = -log(3), tau = 1/sigmoid(w) = 4). Hand trace:
  # H 0.6, 0.6 - 0.15 + 0.6 = 1.05 (fire, V=0), 0.6, 1.5 (fire).
  x = jnp.array([0.6, 0.6, 0.6, 1.5])[:, None]
  layer = layers.SpikingNeuron(kind=kind, tau=4.0)
  variables = layer.init(jax.random.key(0), x)
  if kind == "plif":
    np.testing.assert_allclose(variables["params"]["w"], -math.log(3.0),
                               rtol=1e-6)
  else:
    assert "params" not in variables
  np.testing.assert_array_equal(layer.apply(variables, x)[:, 0], [0, 1, 0, 1])


@pytest.mark.parametrize("case", sorted(test_neurons.LIF_CASES))
def test_plif_golden_traces_all_reset_and_decay_modes(case):
  # PLIF initialised at tau follows LIF's hand-computed traces exactly.
  kwargs, x, spikes, v = test_neurons.LIF_CASES[case]
  kwargs = dict(kwargs)
  layer = layers.SpikingNeuron(kind="plif", tau=kwargs.pop("tau", 2.0),
                               **kwargs)
  x = jnp.asarray(x)[:, None]
  variables = layer.init(jax.random.key(0), x)
  np.testing.assert_array_equal(layer.apply(variables, x)[:, 0], spikes)
  # The potentials, through the same dynamics with PLIF's tau = 1/sigmoid(w).
  tau = 1.0 / jax.nn.sigmoid(variables["params"]["w"])
  _, v_out = neurons.lif_multistep(x, tau=tau, return_v=True, **kwargs)
  np.testing.assert_allclose(v_out[:, 0], v, atol=1e-6)


def test_plif_tau_is_learnable_with_the_right_gradient():
  # Below threshold with a silent surrogate, V_T is smooth in tau: check
  # d(sum V)/dw against finite differences through tau = 1/sigmoid(w).
  x = jnp.array([[0.3], [0.2], [0.4]])
  sg = neurons.surrogate("rectangle", a=0.2)
  layer = layers.SpikingNeuron(kind="plif", tau=2.0, surrogate=sg)

  def v_sum(w):
    tau = 1.0 / jax.nn.sigmoid(w)
    _, v = neurons.lif_multistep(x, tau=tau, surrogate=sg, return_v=True)
    return v.sum()

  w0 = 0.0
  eps = 1e-3
  fd = (v_sum(w0 + eps) - v_sum(w0 - eps)) / (2 * eps)
  assert abs(float(jax.grad(v_sum)(w0))) > 1e-3
  np.testing.assert_allclose(jax.grad(v_sum)(w0), fd, rtol=2e-3)
  # The layer's parameter is that w, and it receives a gradient.
  variables = layer.init(jax.random.key(0), x)
  g = jax.grad(lambda v: layer.apply(v, x * 5.0).sum())(variables)
  assert np.isfinite(g["params"]["w"])


def test_if_layer_and_bad_kind():
  x = jnp.array([0.3, 0.3, 0.5, 2.0])[:, None]
  out = layers.SpikingNeuron(kind="if").apply({}, x)
  np.testing.assert_array_equal(out[:, 0], [0, 0, 1, 1])
  with pytest.raises(ValueError, match="Unknown neuron kind 'alif'"):
    layers.SpikingNeuron(kind="alif").apply({}, x)
  with pytest.raises(ValueError, match="PLIF needs an initial tau > 1"):
    layers.SpikingNeuron(kind="plif", tau=1.0).init(jax.random.key(0), x)


def test_time_batchnorm_uses_statistics_over_time_and_batch():
  # Channel values differ across time only; per-step BN would give zeros,
  # BN over the folded [T*B] batch normalises across time: t0 -> -1, t1 -> +1.
  x = jnp.stack([jnp.zeros((3, 2)), 2 * jnp.ones((3, 2))])  # [T=2, B=3, C=2]
  bn = layers.TimeBatchNorm(epsilon=0.0)
  y, state = bn.apply(bn.init(jax.random.key(0), x), x,
                      mutable=["batch_stats"])
  np.testing.assert_allclose(y[0], -1.0, atol=1e-6)
  np.testing.assert_allclose(y[1], 1.0, atol=1e-6)
  # Running mean moves 10% of the way to the batch mean 1.0.
  np.testing.assert_allclose(state["batch_stats"]["BatchNorm_0"]["mean"], 0.1)


def test_tdbn_scale_init():
  x = jnp.ones((2, 3, 4))
  v = layers.TimeBatchNorm(alpha_vth=0.5).init(jax.random.key(0), x)
  np.testing.assert_allclose(v["params"]["BatchNorm_0"]["scale"], 0.5)
