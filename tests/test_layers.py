"""Time folding, the spiking-neuron layer (LIF / IF / PLIF), tdBN, and the
synaptic operations that Conv and Dense count."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse import layers, models, neurons

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
  layer = layers.SpikingNeuron(kind=kind, params=neurons.NeuronParams(tau=4.0))
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
  layer = layers.SpikingNeuron(kind="plif",
                               params=neurons.NeuronParams(**kwargs))
  kwargs.pop("tau", None)
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
  layer = layers.SpikingNeuron(
      kind="plif", params=neurons.NeuronParams(tau=2.0, surrogate=sg))

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
    layers.SpikingNeuron(kind="plif", params=neurons.NeuronParams(
        tau=1.0)).init(jax.random.key(0), x)


def _always_step(count, x, params):
  """A toy neuron: fires at every step and counts its spikes."""
  del params
  return count + 1.0, jnp.ones_like(x)


@pytest.fixture
def toy_neuron(monkeypatch):
  """Registers the toy kind ``"toy_always"`` for one test only."""
  monkeypatch.setattr(neurons.registry, "_NEURONS",
                      dict(neurons.registry._NEURONS))
  neurons.register("toy_always", _always_step)
  return "toy_always"


def test_user_registered_neuron_in_layer_and_model(toy_neuron):
  x = -jnp.ones((3, 2, 4))  # [T, B, F]: no LIF neuron would fire
  spikes = layers.SpikingNeuron(kind=toy_neuron).apply({}, x)
  np.testing.assert_array_equal(spikes, jnp.ones_like(x))
  # In a model every hidden layer fires always, so the logits are the
  # readout of ones: sum of its kernel's rows plus its bias, at every (t, b).
  model = models.create("mlp", num_classes=3, neuron=toy_neuron,
                        features=(5,))
  images = -jnp.ones((2, 4, 3, 3, 1))
  variables = model.init(jax.random.key(0), images)
  logits = model.apply(variables, images)
  readout = variables["params"]["Dense_1"]
  expected = readout["kernel"].sum(0) + readout["bias"]
  np.testing.assert_allclose(logits, jnp.broadcast_to(expected, (2, 4, 3)),
                             rtol=1e-6)
  lif_logits = models.create("mlp", num_classes=3, features=(5,)).apply(
      variables, images)
  assert not np.allclose(lif_logits, logits)


def test_layer_names_the_valid_kinds_for_an_unknown_one():
  with pytest.raises(ValueError, match=r"choose one of \[.*'if'.*'lif'.*"
                     r"'plif'.*\]"):
    layers.SpikingNeuron(kind="alif").apply({}, jnp.ones((2, 1)))


def test_layer_equals_the_functional_core():
  x = jax.random.normal(jax.random.key(3), (5, 2, 3)) + 0.6
  params = neurons.NeuronParams(tau=3.0, v_reset=None, decay_input=True)
  layer = layers.SpikingNeuron(kind="lif", params=params)
  expected, _ = neurons.multistep(neurons.lif_step, x, params=params)
  np.testing.assert_array_equal(layer.apply({}, x), expected)


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


# --- Synaptic operations: brute-force, event-by-event counts -----------------
# The convention (metrics.py, METHOD.md §4): one SOP is one input spike
# crossing one active synapse. The references below expand every input into
# its individual spikes (a count of n is n events; an average-pooled value is
# the spikes of its window before the pooling) and, for each spike, count the
# active synapses leaving the position it reaches.


def brute_force_conv_fan_out(kernel, in_hw, strides=(1, 1),
                             pads=((0, 0), (0, 0))):
  """``[H, W, Cin]``: active synapses leaving each input, by visiting every
  (output position, tap) pair that reads it."""
  kernel = np.asarray(kernel)
  kh, kw, cin, _ = kernel.shape
  height, width = in_hw
  ho = (height + sum(pads[0]) - kh) // strides[0] + 1
  wo = (width + sum(pads[1]) - kw) // strides[1] + 1
  fan_out = np.zeros((height, width, cin))
  for i in range(ho):
    for j in range(wo):
      for a in range(kh):
        for b in range(kw):
          h = i * strides[0] - pads[0][0] + a
          w = j * strides[1] - pads[1][0] + b
          if 0 <= h < height and 0 <= w < width:
            fan_out[h, w] += np.count_nonzero(kernel[a, b], axis=-1)
  return fan_out


def brute_force_dense_fan_out(kernel, in_shape):
  """Active synapses leaving each input feature, shaped ``in_shape``."""
  kernel = np.asarray(kernel)
  return np.array([np.count_nonzero(row) for row in kernel]).reshape(in_shape)


def brute_force_sops(events, fan_out, window=(1, 1)):
  """SOPs per sample ``[N]``, one input spike at a time.

  ``events``: ``[N, H, W, C]`` non-negative integer spike counts, before any
  average pooling. A spike at ``(h, w, c)`` reaches the (pooled) input
  ``(h // window[0], w // window[1], c)`` of the layer and crosses every
  active synapse leaving it, ``fan_out[that position]``.
  """
  events = np.asarray(events)
  assert np.all(events >= 0) and np.all(events == np.round(events))
  out = np.zeros(events.shape[0])
  for n, h, w, c in np.argwhere(events > 0):
    for _ in range(int(events[n, h, w, c])):  # every single event
      out[n] += fan_out[h // window[0], w // window[1], c]
  return out


def brute_force_macs(x, fan_out):
  """MACs per sample ``[N]``: non-zero analog inputs x their active fan-out."""
  x = np.asarray(x)
  return np.array([fan_out[x[n] != 0].sum() for n in range(x.shape[0])])


def _sparse_kernel(rng, shape, density=0.5):
  return jnp.asarray((rng.normal(size=shape) * (rng.random(shape) < density))
                     .astype(np.float32))


def _ops(layer, kernel, x, kind="sops"):
  _, state = layer.apply({"params": {"kernel": kernel}}, jnp.asarray(x),
                         mutable=["intermediates"])
  assert list(state["intermediates"]) == [kind]
  return np.asarray(state["intermediates"][kind][0])


def _avg_pool2(spikes):
  return np.asarray(nn.avg_pool(jnp.asarray(spikes, jnp.float32), (2, 2),
                                (2, 2)))


def test_avg_pooled_spikes_into_conv_count_the_spikes_before_pooling():
  rng = np.random.default_rng(1)
  spikes = (rng.random((3, 8, 10, 3)) < 0.4).astype(np.float32)
  pooled = _avg_pool2(spikes)  # [3, 4, 5, 3], values k/4
  assert pooled.max() >= 0.75  # windows with several spikes occur
  kernel = _sparse_kernel(rng, (3, 3, 3, 4))
  conv = layers.Conv(4, (3, 3), strides=(2, 1), padding=1, use_bias=False,
                     spikes_per_unit=4)
  fan_out = brute_force_conv_fan_out(kernel, (4, 5), (2, 1), ((1, 1), (1, 1)))
  np.testing.assert_allclose(_ops(conv, kernel, pooled),
                             brute_force_sops(spikes, fan_out, (2, 2)),
                             rtol=1e-6)
  # 4 spikes in a window cost 4x one spike in it.
  full = np.zeros((2, 4, 4, 3), np.float32)
  full[0, 2:4, 2:4, 1] = 1.0
  full[1, 3, 2, 1] = 1.0
  ops = _ops(conv, kernel, _avg_pool2(full))
  assert ops[1] > 0
  np.testing.assert_allclose(ops[0], 4 * ops[1], rtol=1e-6)
  np.testing.assert_allclose(ops, brute_force_sops(
      full, brute_force_conv_fan_out(kernel, (2, 2), (2, 1),
                                     ((1, 1), (1, 1))), (2, 2)), rtol=1e-6)


def test_avg_pooled_spikes_into_dense_count_the_spikes_before_pooling():
  rng = np.random.default_rng(2)
  spikes = (rng.random((4, 6, 4, 2)) < 0.5).astype(np.float32)
  spikes[3] = 0.0
  spikes[3, 0:2, 0:2, 0] = 1.0  # 4 spikes in one window
  spikes[2] = 0.0
  spikes[2, 1, 1, 0] = 1.0  # 1 spike in the same window
  pooled = _avg_pool2(spikes)  # [4, 3, 2, 2]
  kernel = _sparse_kernel(rng, (12, 5))
  kernel = kernel.at[0].set(jnp.array([1.0, 0.0, 2.0, 0.0, 3.0]))
  dense = layers.Dense(5, use_bias=False, spikes_per_unit=4)
  ops = _ops(dense, kernel, pooled.reshape(4, -1))
  fan_out = brute_force_dense_fan_out(kernel, (3, 2, 2))
  np.testing.assert_allclose(ops, brute_force_sops(spikes, fan_out, (2, 2)),
                             rtol=1e-6)
  np.testing.assert_allclose(ops[2:], [3.0, 12.0])


def test_global_average_pool_into_dense_counts_every_spike():
  # As in ResNet19: mean over a 3x5 map (not a power of two), then FC.
  rng = np.random.default_rng(3)
  spikes = (rng.random((3, 3, 5, 6)) < 0.5).astype(np.float32)
  x = jnp.mean(jnp.asarray(spikes), axis=(1, 2))  # [3, 6]
  kernel = _sparse_kernel(rng, (6, 7))
  dense = layers.Dense(7, use_bias=False, spikes_per_unit=15)
  fan_out = brute_force_dense_fan_out(kernel, (1, 1, 6))
  np.testing.assert_allclose(_ops(dense, kernel, x),
                             brute_force_sops(spikes, fan_out, (3, 5)),
                             rtol=1e-6)


def test_event_count_frames_count_every_event():
  rng = np.random.default_rng(4)
  counts = rng.integers(0, 4, size=(3, 6, 7, 2)).astype(np.float32)  # 0..3
  kernel = _sparse_kernel(rng, (3, 3, 2, 3))
  conv = layers.Conv(3, (3, 3), strides=(2, 2), padding=1, use_bias=False)
  fan_out = brute_force_conv_fan_out(kernel, (6, 7), (2, 2), ((1, 1), (1, 1)))
  np.testing.assert_allclose(_ops(conv, kernel, counts),
                             brute_force_sops(counts, fan_out), rtol=1e-6)
  # A pixel with count 3 is 3 events.
  one = np.zeros((2, 6, 7, 2), np.float32)
  one[0, 2, 3, 1], one[1, 2, 3, 1] = 3.0, 1.0
  ops = _ops(conv, kernel, one)
  assert ops[1] > 0
  np.testing.assert_allclose(ops, [3 * fan_out[2, 3, 1], fan_out[2, 3, 1]])


def test_analog_input_counts_macs_whatever_the_values():
  rng = np.random.default_rng(5)
  x = (rng.normal(size=(3, 5, 6, 3)) * (rng.random((3, 5, 6, 3)) < 0.6)
       ).astype(np.float32)  # negative, fractional and zero inputs
  kernel = _sparse_kernel(rng, (3, 3, 3, 4))
  fan_out = brute_force_conv_fan_out(kernel, (5, 6), (1, 1), ((1, 1), (1, 1)))
  for per_unit in (1, 4):  # spikes_per_unit does not apply to MACs
    conv = layers.Conv(4, (3, 3), padding=1, use_bias=False,
                       analog_input=True, spikes_per_unit=per_unit)
    np.testing.assert_allclose(_ops(conv, kernel, x, "macs"),
                               brute_force_macs(x, fan_out), rtol=1e-6)
  dense_kernel = _sparse_kernel(rng, (90, 4))
  dense = layers.Dense(4, use_bias=False, analog_input=True,
                       spikes_per_unit=4)
  np.testing.assert_allclose(
      _ops(dense, dense_kernel, x.reshape(3, -1), "macs"),
      brute_force_macs(x, brute_force_dense_fan_out(dense_kernel, (5, 6, 3))),
      rtol=1e-6)


def test_spiking_input_counts_fractional_and_negative_values_by_magnitude():
  # Documented: non-integer values count as fractional events, negative
  # ones by their magnitude (SOPs never go negative).
  kernel = jnp.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])  # fan-out [2, 1]
  x = jnp.array([[0.5, 0.0], [-0.5, 2.5], [0.0, 0.0]])
  dense = layers.Dense(3, use_bias=False, spikes_per_unit=2)
  np.testing.assert_allclose(_ops(dense, kernel, x), [2.0, 7.0, 0.0])


@pytest.mark.parametrize("shape,window,kind", [
    ((3, 8, 8, 5), 2, "spikes"),    # binary: many ties per window
    ((2, 7, 9, 3), 2, "halves"),    # odd sizes (VALID drops the rest), ties
    ((2, 9, 6, 4), 3, "normal"),    # window 3
    ((1, 4, 4, 2), 2, "zeros"),     # every element of every window ties
])
def test_max_pool_equals_xla_values_and_gradients_ties_included(shape, window,
                                                                kind):
  k = jax.random.key(0)
  x = {"spikes": (jax.random.uniform(k, shape) < 0.3).astype(jnp.float32),
       "halves": jnp.round(jax.random.normal(k, shape) * 2) / 2,
       "normal": jax.random.normal(k, shape),
       "zeros": jnp.zeros(shape)}[kind]
  out_shape = (shape[0], shape[1] // window, shape[2] // window, shape[3])
  g = jax.random.normal(jax.random.key(1), out_shape)
  reference = lambda x: nn.max_pool(x, (window, window), (window, window))
  y_ref, vjp_ref = jax.vjp(reference, x)
  y, vjp = jax.vjp(jax.jit(lambda x: layers.max_pool(x, window)), x)
  np.testing.assert_array_equal(y, y_ref)
  # Each window's gradient goes to its first maximal element (row-major).
  np.testing.assert_array_equal(vjp(g)[0], vjp_ref(g)[0])
  if kind == "zeros":
    gx = np.asarray(vjp(g)[0])
    np.testing.assert_array_equal(gx[:, ::2, ::2], g)
    assert np.count_nonzero(gx) == np.count_nonzero(g)
