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


def test_conv_counts_synaptic_operations_by_hand():
  # One input channel, 3x3 kernel, padding 1, 3x3 image, 2 output channels.
  # A spike in the corner (0, 0) is reached by outputs (0,0), (0,1), (1,0),
  # (1,1) through taps (1,1), (1,0), (0,1), (0,0). With tap (0,0) inactive
  # in both output channels: 3 active taps x 2 channels = 6 operations.
  conv = layers.Conv(2, (3, 3), padding=1, use_bias=False)
  x = jnp.zeros((1, 3, 3, 1)).at[0, 0, 0, 0].set(1.0)
  kernel = jnp.ones((3, 3, 1, 2)).at[0, 0].set(0.0)
  _, state = conv.apply({"params": {"kernel": kernel}}, x,
                        mutable=["intermediates"])
  np.testing.assert_array_equal(state["intermediates"]["sops"][0], [6.0])
  # A spike in the centre meets all 8 active taps per channel: 16.
  x = jnp.zeros((1, 3, 3, 1)).at[0, 1, 1, 0].set(1.0)
  _, state = conv.apply({"params": {"kernel": kernel}}, x,
                        mutable=["intermediates"])
  np.testing.assert_array_equal(state["intermediates"]["sops"][0], [16.0])
  # Stride 2 (outputs at 0 and 2 in each axis): the centre spike is reached
  # only by output (0,0) through tap (2,2)... and three more outputs: (0,1)
  # via (2,0), (1,0) via (0,2), (1,1) via (0,0) (inactive) -> 3 x 2 = 6.
  conv2 = layers.Conv(2, (3, 3), strides=(2, 2), padding=1, use_bias=False)
  x2 = jnp.stack([x[0], jnp.zeros_like(x[0])])  # a second, silent sample
  _, state = conv2.apply({"params": {"kernel": kernel}}, x2,
                         mutable=["intermediates"])
  np.testing.assert_array_equal(state["intermediates"]["sops"][0], [6.0, 0.0])


def test_dense_counts_operations_and_marks_analog_input():
  # Active fan-out per input feature: [1, 2, 1]; non-zero inputs: features
  # 0 and 2 in sample 1 -> 1 + 1 = 2; feature 1 in sample 2 -> 2.
  kernel = jnp.array([[1.0, 0.0], [0.5, 2.0], [0.0, 3.0]])
  x = jnp.array([[1.0, 0.0, 1.0], [0.0, 0.7, 0.0]])
  dense = layers.Dense(2, use_bias=False, analog_input=True)
  _, state = dense.apply({"params": {"kernel": kernel}}, x,
                         mutable=["intermediates"])
  assert list(state["intermediates"]) == ["macs"]
  np.testing.assert_array_equal(state["intermediates"]["macs"][0], [2.0, 2.0])
  # Without the intermediates collection nothing is counted.
  y = dense.apply({"params": {"kernel": kernel}}, x)
  np.testing.assert_allclose(y, x @ kernel)


def test_neuron_layer_reports_firing_rate():
  # [T=4, B=1, 2 neurons]: neuron 0 spikes [0, 0, 1, 1], neuron 1 never.
  x = jnp.stack([jnp.array([0.6, 0.6, 0.6, 1.5]), jnp.zeros(4)], -1)[:, None]
  _, state = layers.SpikingNeuron().apply({}, x, mutable=["intermediates"])
  np.testing.assert_allclose(state["intermediates"]["firing_rate"][0][:, 0],
                             [0.0, 0.0, 0.5, 0.5])


@pytest.mark.parametrize("strides,padding,pads", [
    ((1, 1), "SAME", ((1, 1), (1, 1))), ((2, 2), 1, ((1, 1), (1, 1))),
    ((2, 1), "VALID", ((0, 0), (0, 0)))])
def test_conv_sops_match_brute_force_count(strides, padding, pads):
  # Output channels with different masks: the count must weigh every
  # (spike, active synapse) pair, i.e. equal the sum over outputs of the
  # convolution of the spike map with the 0/1 mask.
  rng = np.random.default_rng(0)
  x = (rng.random((3, 7, 6, 4)) < 0.3).astype(np.float32)
  kernel = rng.normal(size=(3, 3, 4, 5)) * (rng.random((3, 3, 4, 5)) < 0.4)
  conv = layers.Conv(5, (3, 3), strides=strides, padding=padding,
                     use_bias=False)
  _, state = conv.apply({"params": {"kernel": jnp.asarray(kernel)}},
                        jnp.asarray(x), mutable=["intermediates"])
  xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  active = kernel != 0
  ho = (xp.shape[1] - 3) // strides[0] + 1
  wo = (xp.shape[2] - 3) // strides[1] + 1
  expected = np.zeros(3)
  for n in range(3):
    for i in range(ho):
      for j in range(wo):
        patch = xp[n, i * strides[0]:i * strides[0] + 3,
                   j * strides[1]:j * strides[1] + 3]
        expected[n] += (patch[..., None] * active).sum()
  np.testing.assert_array_equal(state["intermediates"]["sops"][0], expected)
