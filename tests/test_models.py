"""Every model: output shape, parameter count, finite gradients, no retrace."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse import layers, losses, models, neurons
from snn_sparse.sparsity import masks as masks_lib

import test_layers

RNGS = {"params": jax.random.key(0), "dropout": jax.random.key(1)}

# name -> (full-size input [T, B, H, W, C], expected parameter count or None,
#          reduced input used for the gradient test).
# ResNet19 at 10 classes: convs 12,553,600 + FC 131,328 + 2,570 + BN 10,496.
# VGGSNN at 48x48x2: convs 9,217,152 + FC 46,090 + BN 5,504.
CASES = {
    "mlp": ((4, 2, 8, 8, 1), 64 * 256 + 256 + 256 * 128 + 128 + 1290,
            (4, 2, 8, 8, 1)),
    "convnet": ((4, 2, 28, 28, 1), None, (4, 2, 8, 8, 1)),
    "convnet6x2": ((8, 2, 32, 32, 3), None, (2, 2, 8, 8, 3)),
    "resnet19": ((2, 2, 32, 32, 3), 12_697_994, (2, 2, 16, 16, 3)),
    "vggsnn": ((10, 2, 48, 48, 2), 9_268_746, (2, 2, 16, 16, 2)),
}


def _count(params):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


@pytest.mark.parametrize("name", sorted(CASES))
def test_full_size_shapes_and_parameter_count(name):
  shape, expected, _ = CASES[name]
  model = models.create(name)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(RNGS, x, train=False), x)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False),
                       variables, x)
  assert out.shape == (shape[0], shape[1], 10)
  n = _count(variables["params"])
  print(f"{name}: {n:,} parameters at input {shape[2:]}")
  if expected is not None:
    assert n == expected
  # Prunable kernels are found by the documented path filter, and nothing
  # else (BatchNorm, biases, PLIF's w) is.
  paths = masks_lib.prunable_paths(variables["params"])
  assert paths and all(p.endswith("kernel") for p in paths)
  assert not any("BatchNorm" in p for p in paths)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_is_finite_and_reaches_every_layer(name):
  _, _, shape = CASES[name]
  model = models.create(name)
  x = jax.random.uniform(jax.random.key(3), shape) * 3.0
  labels = jnp.arange(shape[1]) % 10
  variables = model.init(RNGS, x, train=False)

  def loss_fn(params):
    logits, updates = model.apply(
        {**variables, "params": params}, x,
        train=True, mutable=["batch_stats"], rngs={"dropout": RNGS["dropout"]})
    assert logits.shape == (shape[0], shape[1], 10)
    return losses.mean_cross_entropy(logits, labels)

  grads = jax.jit(jax.grad(loss_fn))(variables["params"])
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  for path, g in flat:
    assert np.all(np.isfinite(g)), masks_lib.path_str(path)
  kernels = [g for path, g in flat
             if masks_lib.is_prunable(masks_lib.path_str(path))]
  # Surrogate gradients flow back to the first layer.
  assert np.abs(kernels[0]).sum() > 0


def test_create_validates_name_and_fields():
  with pytest.raises(ValueError, match="Unknown model 'resnet50'"):
    models.create("resnet50")
  with pytest.raises(ValueError, match=r"no field\(s\) \['widht'\]"):
    models.create("convnet", widht=3)
  model = models.create("convnet", num_classes=3, neuron="plif", tau=1.5)
  assert model.num_classes == 3 and model.neuron == "plif"


def test_flat_neuron_fields_build_the_one_neuron_params():
  # The defaults are NeuronParams's, and every model layer gets one params.
  assert models.create("mlp").neuron_params() == neurons.NeuronParams()
  model = models.create("convnet", neuron="if", tau=1.5, v_reset=None,
                        v_threshold=0.5, decay_input=True, detach_reset=True,
                        surrogate="atan")
  expected = neurons.NeuronParams(tau=1.5, v_reset=None, v_threshold=0.5,
                                  decay_input=True, detach_reset=True,
                                  surrogate="atan")
  assert model.neuron_params() == expected
  x = jnp.ones((2, 1, 8, 8, 1))
  variables = model.init(RNGS, x, train=False)
  seen = []

  def record(next_fun, args, kwargs, context):
    if (isinstance(context.module, layers.SpikingNeuron)
        and context.method_name == "__call__"):
      seen.append((context.module.kind, context.module.params))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    model.apply(variables, x, train=False)
  assert seen == [("if", expected)] * 3


def test_input_must_be_time_major_5d():
  model = models.create("convnet")
  with pytest.raises(ValueError, match=r"\[T, B, H, W, C\]"):
    model.init(RNGS, jnp.zeros((2, 8, 8, 1)), train=False)


def test_forward_does_not_retrace_on_new_values():
  model = models.create("convnet")
  x = jnp.zeros((4, 2, 8, 8, 1))
  variables = model.init(RNGS, x, train=False)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def forward(variables, x):
    return model.apply(variables, x, train=False)

  for seed in range(3):
    out = forward(variables, jax.random.normal(jax.random.key(seed), x.shape))
    assert out.shape == (4, 2, 10)


@pytest.mark.parametrize("name", ["convnet", "resnet19"])
def test_models_report_ops_and_firing_rates(name):
  _, _, shape = CASES[name]
  model = models.create(name)
  x = jax.random.uniform(jax.random.key(0), shape)
  variables = model.init(RNGS, x, train=False)
  _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
  flat = {masks_lib.path_str(p): v for p, v in
          jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]}
  macs = [p for p in flat if p.endswith("macs/0")]
  sops = [p for p in flat if p.endswith("sops/0")]
  rates = [p for p in flat if p.endswith("firing_rate/0")]
  # Exactly the first layer reads the analog input; every kernel reports.
  assert len(macs) == 1
  assert len(macs) + len(sops) == len(
      masks_lib.prunable_paths(variables["params"]))
  assert rates and all(flat[p].shape == shape[:2] for p in rates)
  assert all(0.0 <= float(flat[p].mean()) <= 1.0 for p in rates)
  assert all(flat[p].shape == (shape[0] * shape[1],) for p in macs + sops)


def _small_resnet(**overrides):
  return models.create("resnet19", stem_width=8, stage_widths=(8, 16, 16),
                       stage_sizes=(1, 1, 1), hidden=16, **overrides)


def _spikes_and_grads(model, variables, x, labels):
  """Spikes of every neuron layer (eval pass) and the training gradients."""
  _, state = model.apply(
      variables, x, train=False, mutable=["intermediates"],
      capture_intermediates=lambda mdl, _: isinstance(
          mdl, layers.SpikingNeuron))
  spikes = [v for p, v in jax.tree_util.tree_flatten_with_path(
      state["intermediates"])[0] if "__call__" in masks_lib.path_str(p)]
  assert len(spikes) == 8  # stem, 2 per block x 3 blocks, hidden

  def loss_fn(params):
    logits, _ = model.apply({**variables, "params": params}, x, train=True,
                            mutable=["batch_stats"])
    return losses.mean_cross_entropy(logits, labels)

  return spikes, jax.jit(jax.grad(loss_fn))(variables["params"])


@pytest.mark.parametrize("remat", ["neuron", "block"])
def test_remat_gives_identical_spikes_and_gradients(remat):
  x = jax.random.uniform(jax.random.key(3), (4, 2, 8, 8, 3)) * 3.0
  labels = jnp.array([2, 5])
  plain, checkpointed = _small_resnet(), _small_resnet(remat=remat)
  variables = plain.init(RNGS, x, train=False)
  # The same parameter paths, so checkpoints load either way.
  assert jax.tree.structure(variables) == jax.tree.structure(
      checkpointed.init(RNGS, x, train=False))
  spikes_a, grads_a = _spikes_and_grads(plain, variables, x, labels)
  spikes_b, grads_b = _spikes_and_grads(checkpointed, variables, x, labels)
  for a, b in zip(spikes_a, spikes_b):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_compute_keeps_fp32_weights_and_nearly_the_same_spikes():
  x = jax.random.uniform(jax.random.key(3), (4, 2, 8, 8, 3)) * 3.0
  labels = jnp.array([2, 5])
  fp32, bf16 = _small_resnet(), _small_resnet(dtype="bfloat16")
  variables = fp32.init(RNGS, x, train=False)
  bf16_variables = bf16.init(RNGS, x, train=False)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(bf16_variables))
  assert bf16.apply(variables, x, train=False).dtype == jnp.float32
  spikes_a, grads_a = _spikes_and_grads(fp32, variables, x, labels)
  spikes_b, grads_b = _spikes_and_grads(bf16, variables, x, labels)
  # bf16 rounding of the conv outputs flips the few neurons that sit at the
  # threshold: at most 2% of the spikes of any layer differ.
  for a, b in zip(spikes_a, spikes_b):
    assert np.mean(np.asarray(a) != np.asarray(b)) <= 0.02
  for b in jax.tree.leaves(grads_b):
    assert b.dtype == jnp.float32 and np.all(np.isfinite(b))
  # The readout's gradient agrees closely. Deeper layers drift much further
  # (bf16 rounding of dY, amplified by BatchNorm's backward on a tiny batch
  # and by flipped spikes): see docs/performance.md. bf16 is an option for
  # accelerators, not a bit-compatible mode.
  for a, b in ((grads_a["Dense_1"]["bias"], grads_b["Dense_1"]["bias"]),):
    assert np.linalg.norm(a - b) <= 0.02 * np.linalg.norm(a)


def test_bad_dtype_and_remat_values_raise():
  x = jnp.zeros((1, 1, 8, 8, 3))
  with pytest.raises(ValueError, match="Unknown model dtype 'float16'"):
    _small_resnet(dtype="float16").init(RNGS, x, train=False)
  with pytest.raises(ValueError, match="Unknown remat 'all'"):
    _small_resnet(remat="all").init(RNGS, x, train=False)


# --- SOPs of whole models against a brute-force recount ---------------------
# Each kernel layer: (module path, the module whose output it reads: "input"
# or a SpikingNeuron path, conv (kernel, stride) or "dense", and the pooling
# window between them: (ph, pw) for average pools, "global" for ResNet19's
# global average pool). Models reduced to tiny widths; thresholds lowered so
# that every layer spikes.
def _resnet_topology():
  spec = [("Conv_0", "input", (3, 1), None)]
  source = "SpikingNeuron_0"
  for k, stride in enumerate((1, 2, 2)):
    block = f"BasicBlock_{k}"
    spec += [(f"{block}/Conv_0", source, (3, stride), None),
             (f"{block}/Conv_1", f"{block}/SpikingNeuron_0", (3, 1), None)]
    if k:  # stride 2: 1x1 shortcut
      spec.append((f"{block}/Conv_2", source, (1, stride), None))
    source = f"{block}/SpikingNeuron_1"
  return spec + [("Dense_0", source, "dense", "global"),
                 ("Dense_1", "SpikingNeuron_1", "dense", None)]


SOP_MODELS = {
    "convnet_avg": (
        dict(name="convnet", features=(4, 6), hidden=8, pooling="avg"),
        [("Conv_0", "input", (3, 1), None),
         ("Conv_1", "SpikingNeuron_0", (3, 1), (2, 2)),
         ("Dense_0", "SpikingNeuron_1", "dense", (2, 2)),
         ("Dense_1", "SpikingNeuron_2", "dense", None)]),
    "vggsnn_two_pools": (  # pools in series: 4x4 windows into the readout
        dict(name="vggsnn", layout=(4, "P", 6, "P", "P")),
        [("Conv_0", "input", (3, 1), None),
         ("Conv_1", "SpikingNeuron_0", (3, 1), (2, 2)),
         ("Dense_0", "SpikingNeuron_1", "dense", (4, 4))]),
    "resnet19": (
        dict(name="resnet19", stem_width=4, stage_widths=(4, 6, 6),
             stage_sizes=(1, 1, 1), hidden=8),
        _resnet_topology()),
}


def _brute_force_model_ops(spec, params, inputs, analog_input):
  """``{layer: (kind, [T*B] ops)}`` recounted spike by spike."""
  out = {}
  for path, source, op, window in spec:
    x = inputs[source]
    x = np.asarray(x).reshape((-1,) + x.shape[2:])  # fold time: [T*B, ...]
    if x.ndim == 2:  # features [T*B, F] as a 1x1 map
      x = x[:, None, None, :]
    kernel = params
    for part in path.split("/"):
      kernel = kernel[part]
    kernel = np.asarray(kernel["kernel"])
    if window == "global":
      window = x.shape[1:3]
    window = window or (1, 1)
    in_hw = (x.shape[1] // window[0], x.shape[2] // window[1])
    if op == "dense":
      fan_out = test_layers.brute_force_dense_fan_out(
          kernel, in_hw + x.shape[3:])
    else:
      size, stride = op
      pad = ((size // 2,) * 2,) * 2
      fan_out = test_layers.brute_force_conv_fan_out(
          kernel, in_hw, (stride, stride), pad)
    if source == "input" and analog_input:
      out[path] = ("macs", test_layers.brute_force_macs(x, fan_out))
    else:
      out[path] = ("sops", test_layers.brute_force_sops(x, fan_out, window))
  return out


@pytest.mark.parametrize("analog_input", [True, False])
@pytest.mark.parametrize("case", sorted(SOP_MODELS))
def test_model_sops_equal_a_brute_force_recount_of_its_spikes(case,
                                                              analog_input):
  """Every layer's sown ops equal a spike-by-spike recount from the model's
  own spikes, with partial masks; event input: counts 0..3, as SOPs."""
  fields, spec = SOP_MODELS[case]
  fields = dict(fields)
  model = models.create(fields.pop("name"), analog_input=analog_input,
                        v_threshold=0.2, **fields)
  rng = np.random.default_rng(0)
  shape = (2, 2, 8, 8, 2)
  if analog_input:
    x = rng.normal(size=shape) * (rng.random(shape) < 0.7)  # zeros are free
  else:
    x = rng.integers(0, 4, size=shape)  # event counts 0..3
  x = jnp.asarray(x, jnp.float32)
  variables = model.init(RNGS, x, train=False)
  params = jax.tree_util.tree_map_with_path(
      lambda p, v: v * (rng.random(v.shape) < 0.7) if masks_lib.is_prunable(
          masks_lib.path_str(p)) else v, variables["params"])
  _, state = model.apply(
      {**variables, "params": params}, x, train=False,
      mutable=["intermediates"], capture_intermediates=lambda mdl, _: (
          isinstance(mdl, layers.SpikingNeuron)))
  sown, spikes = {}, {"input": x}
  for p, v in jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]:
    path = masks_lib.path_str(p)
    module, kind = path.rsplit("/", 2)[:2]
    if kind in ("sops", "macs"):
      sown[module] = (kind, np.asarray(v))
    elif kind == "__call__":
      spikes[module] = v
  expected = _brute_force_model_ops(spec, params, spikes, analog_input)
  assert sorted(sown) == sorted(expected)
  for layer, (kind, ops) in expected.items():
    assert sown[layer][0] == kind, layer
    assert ops.sum() > 0, layer  # every layer receives spikes
    np.testing.assert_allclose(sown[layer][1], ops, rtol=1e-5, err_msg=layer)
  # Several spikes share an average-pooling window (where the old count,
  # non-zero inputs x fan-out, was too low).
  assert max(_busiest_window(spikes[source], window)
             for _, source, _, window in spec if window) >= 2


def _busiest_window(x, window):
  """The most spikes in one pooling window of ``x`` ``[T, B, H, W, C]``."""
  x = np.asarray(x)
  t, b, h, w, c = x.shape
  ph, pw = (h, w) if window == "global" else window
  return x.reshape(t, b, h // ph, ph, w // pw, pw, c).sum((3, 5)).max()


def test_event_model_first_layer_counts_events_as_sops():
  # The event path (analog_input=False) of a real model: a frame pixel with
  # count 3 costs 3x the same pixel with count 1, under "sops".
  model = models.create("vggsnn", layout=(4, "P"), analog_input=False)
  x = jnp.zeros((1, 2, 8, 8, 2)).at[0, 0, 3, 4, 1].set(3.0)
  x = x.at[0, 1, 3, 4, 1].set(1.0)
  variables = model.init(RNGS, x, train=False)
  _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
  assert "macs" not in state["intermediates"]["Conv_0"]
  ops = state["intermediates"]["Conv_0"]["sops"][0]
  np.testing.assert_allclose(ops, [3 * 9 * 4, 9 * 4])  # 9 taps x 4 channels


def test_spikes_after_training_dropout_count_once():
  # ConvNet6x2 in training: inverted dropout scales a kept spike to
  # 1 / (1 - rate); each is still one spike per active synapse.
  model = models.create("convnet6x2", width=4, hidden=8, voting=2,
                        dropout=0.5, v_threshold=0.2)
  x = jax.random.normal(jax.random.key(0), (2, 2, 8, 8, 3))
  variables = model.init(RNGS, x, train=False)
  _, state = model.apply(
      variables, x, train=True, rngs={"dropout": RNGS["dropout"]},
      mutable=["intermediates", "batch_stats"],
      capture_intermediates=lambda mdl, _: isinstance(mdl, nn.Dropout))
  inter = state["intermediates"]
  dropped = [np.asarray(v).reshape(4, -1) for v in inter["Dropout_0"][
      "__call__"]]  # the inputs of Dense_0 and Dense_1
  assert all(set(np.unique(d)) == {0.0, 2.0} for d in dropped)
  for layer, spikes in zip(("Dense_0", "Dense_1"), dropped):
    fan_out = test_layers.brute_force_dense_fan_out(
        variables["params"][layer]["kernel"], spikes.shape[1:])
    np.testing.assert_allclose(inter[layer]["sops"][0],
                               (spikes != 0) @ fan_out, rtol=1e-6)


def test_max_pool_implementations_agree_in_a_model():
  x = (jax.random.uniform(jax.random.key(0), (4, 2, 12, 12, 1)) < 0.5
       ).astype(jnp.float32)
  labels = jnp.array([1, 3])
  grads, values = {}, {}
  for impl in ("mask", "xla"):
    model = models.create("convnet", num_classes=10, max_pool_impl=impl)
    variables = model.init(jax.random.key(1), x, train=False)

    def loss(params):
      logits, _ = model.apply({**variables, "params": params}, x, train=True,
                              mutable=["batch_stats"])
      return losses.mean_cross_entropy(logits, labels)

    values[impl], grads[impl] = jax.value_and_grad(loss)(variables["params"])
  np.testing.assert_allclose(values["mask"], values["xla"], rtol=1e-6)
  chex.assert_trees_all_close(grads["mask"], grads["xla"], rtol=1e-5,
                              atol=1e-6)
  with pytest.raises(ValueError, match="max_pool_impl 'fast'"):
    models.create("convnet", num_classes=10, max_pool_impl="fast").init(
        jax.random.key(1), x, train=False)


@pytest.mark.parametrize("name,image_shape,time_steps", [
    ("convnet", (3, 12, 12, 1), 4), ("mlp", (3, 8, 8, 1), 4),
    ("resnet19", (2, 8, 8, 3), 2)])
def test_repeated_input_runs_the_first_layer_once_with_equal_results(
    name, image_shape, time_steps):
  images = jax.random.normal(jax.random.key(0), image_shape)
  x = layers.repeat_time(images, time_steps)
  labels = jnp.arange(image_shape[0])
  out = {}
  for repeated in (False, True):
    model = models.create(name, num_classes=10, repeated_input=repeated)
    variables = model.init(jax.random.key(1), x, train=False)

    def loss(params):
      logits, updates = model.apply({**variables, "params": params}, x,
                                    train=True, mutable=["batch_stats"])
      return losses.mean_cross_entropy(logits, labels), updates

    (value, updates), grads = jax.value_and_grad(loss, has_aux=True)(
        variables["params"])
    # Evaluation also runs the first layer once, and counts T steps of it.
    logits, inter = model.apply(variables, x, train=False,
                                mutable=["intermediates"])
    # The first layer's work in a training step, from XLA's cost analysis.
    flops = jax.jit(jax.grad(lambda p: loss(p)[0])).lower(
        variables["params"]).compile().cost_analysis()["flops"]
    out[repeated] = (value, grads, updates, logits, inter, flops)
  off, on = out[False], out[True]
  np.testing.assert_allclose(on[0], off[0], rtol=1e-6)
  chex.assert_trees_all_close(on[1], off[1], rtol=1e-4, atol=1e-6)
  chex.assert_trees_all_close(on[2], off[2], rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(on[3:5], off[3:5])
  assert on[5] < off[5]  # less work


def test_the_trainer_repeats_images_but_never_event_frames():
  from experiments.configs import default, digits_events
  from snn_sparse.training import train
  from snn_sparse.data import pipeline
  for name in ("digits", "fashion_mnist", "cifar10"):
    assert train.model_for_dataset(
        default.get_config(), pipeline.dataset_info(name)).repeated_input
  for name in ("digits_events", "cifar10_dvs", "nmnist"):
    assert not train.model_for_dataset(
        digits_events.get_config(), pipeline.dataset_info(name)
    ).repeated_input
  config = default.get_config()
  config.model.repeated_input = False  # the config has the last word
  assert not train.model_for_dataset(
      config, pipeline.dataset_info("digits")).repeated_input


@pytest.mark.parametrize("name,neuron", [("mlp", "lif"), ("convnet", "if"),
                                         ("convnet", "plif")])
def test_a_model_runs_on_a_stream_chunk_by_chunk(name, neuron):
  # Eval mode (running BatchNorm statistics): a run over T = 6 equals two
  # runs of 3 steps that pass the neurons' final state on.
  model = models.create(name, num_classes=10, neuron=neuron)
  x = jax.random.uniform(jax.random.key(0), (6, 2, 8, 8, 1)) * 3.0
  variables = model.init(jax.random.key(1), x, train=False)
  assert "neuron_state" not in variables  # init stores no state
  whole = model.apply(variables, x, train=False)
  first, state = model.apply(variables, x[:3], train=False,
                             mutable=["neuron_state"])
  assert jax.tree.leaves(state["neuron_state"])
  second, _ = model.apply({**variables, **state}, x[3:], train=False,
                          mutable=["neuron_state"])
  np.testing.assert_allclose(jnp.concatenate([first, second]), whole,
                             rtol=1e-5, atol=1e-5)
  # Without the collection a call starts from rest, as before: the second
  # chunk alone is not the second half of the whole run.
  assert not np.allclose(model.apply(variables, x[3:], train=False),
                         whole[3:])
