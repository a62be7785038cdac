"""NIR export: the neuron mapping, BatchNorm folding, the reference simulator,
and spike-for-spike agreement of read-back graphs with the JAX models."""

import pathlib
import re

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

from snn_sparse import models, neurons
from snn_sparse.export import bn_fold, nir_graph, nir_neurons, nir_reference
from snn_sparse.export import nir_verify
from snn_sparse.sparsity import masks as masks_lib

import export_models

ONE_BELOW = np.float32(0.99999994)  # the largest float32 below 1


# ----------------------------------------------------------------------------
# The mapping of one neuron, and BatchNorm folding
# ----------------------------------------------------------------------------
def test_lif_maps_to_nir_lif_at_dt():
  p = neurons.NeuronParams(tau=2.0)
  node = nir_neurons.neuron_node("lif", p, (3,), dt=1e-4)
  assert isinstance(node, nir.LIF)
  # beta = 1 - 1/tau = 0.5: tau_nir = dt / (1 - beta), r = 1 / (1 - beta).
  np.testing.assert_array_equal(node.tau, np.float32([2e-4] * 3))
  np.testing.assert_array_equal(node.r, np.float32([2.0] * 3))
  np.testing.assert_array_equal(node.v_leak, np.zeros(3, np.float32))
  np.testing.assert_array_equal(node.v_reset, np.zeros(3, np.float32))
  np.testing.assert_array_equal(node.v_threshold, [ONE_BELOW] * 3)


def test_decay_input_if_and_reset_value_map():
  lif = nir_neurons.neuron_node(
      "lif", neurons.NeuronParams(tau=4.0, decay_input=True), (2, 1, 1),
      dt=0.5)
  assert lif.tau.shape == (2, 1, 1)
  np.testing.assert_array_equal(lif.tau, np.full((2, 1, 1), 2.0))
  np.testing.assert_array_equal(lif.r, np.ones((2, 1, 1)))  # input / tau
  iff = nir_neurons.neuron_node(
      "if", neurons.NeuronParams(v_threshold=0.8, v_reset=-0.3), (1,),
      dt=1e-4)
  assert isinstance(iff, nir.IF)
  np.testing.assert_allclose(iff.r, [1e4])
  # Potentials relative to v_reset: threshold 0.8 - (-0.3) = 1.1 (just below).
  assert iff.v_threshold[0] == np.nextafter(np.float32(1.1), np.float32(0))
  assert iff.v_reset[0] == 0


def test_threshold_below_turns_strict_into_at_least():
  t = nir_neurons.threshold_below(1.0)
  assert t == ONE_BELOW
  v = np.float32([ONE_BELOW, 1.0, np.nextafter(np.float32(1), np.float32(2))])
  np.testing.assert_array_equal(v > t, v >= np.float32(1.0))


def test_what_nir_cannot_express_is_refused():
  with pytest.raises(nir_neurons.NIRExportError, match="soft reset"):
    nir_neurons.neuron_node("lif", neurons.NeuronParams(v_reset=None), (1,),
                            dt=1e-4)
  with pytest.raises(nir_neurons.NIRExportError,
                     match="'my_kind'.*no NIR equivalent"):
    nir_neurons.check_neuron("my_kind", neurons.NeuronParams())
  model = models.create("convnet", pooling="avg", v_reset=None)
  with pytest.raises(nir_neurons.NIRExportError, match="soft reset"):
    nir_graph.to_nir(model, {"params": {}}, None, (8, 8, 1))

  class Mine(models.SpikingMLP):
    pass

  with pytest.raises(nir_neurons.NIRExportError,
                     match="No NIR exporter for Mine"):
    nir_graph.to_nir(Mine(), {"params": {}}, None, (8, 8, 1))


def test_fold_batchnorm_hand_computed():
  kernel = np.float32([[[[2.0, 3.0]]]])           # [1, 1, 1, 2]
  w, b = bn_fold.fold_batchnorm(kernel, scale=[1.0, 2.0], bias=[0.5, 0.0],
                                mean=[1.0, -1.0], var=[3.0, 0.0], eps=1.0)
  # g = scale / sqrt(var + eps) = [0.5, 2]; b' = bias - mean * g.
  np.testing.assert_array_equal(w, np.float32([[[[1.0, 6.0]]]]))
  np.testing.assert_array_equal(b, np.float32([0.0, 2.0]))


# ----------------------------------------------------------------------------
# The reference simulator, on hand-computed cases
# ----------------------------------------------------------------------------
def _chain(node, shape, dt=1.0):
  return nir.NIRGraph(
      nodes={"input": nir.Input(input_type={"input": np.array(shape)}),
             "n": node,
             "output": nir.Output(output_type={"output": np.array(
                 node.output_type["output"])})},
      edges=[("input", "n"), ("n", "output")], metadata={"dt": dt})


def test_reference_lif_forward_euler_hand_computed():
  lif = nir.LIF(tau=np.float32([2.0]), r=np.float32([2.0]),
                v_leak=np.float32([0.0]), v_threshold=np.float32([1.0]),
                v_reset=np.float32([0.0]))
  x = np.array([0.6, 0.6, 0.1, 2.0, 0.2]).reshape(5, 1, 1)
  # v += dt/tau (v_leak - v + r I), dt/tau = 1/2:
  # 0.6; 0.6 + (1.2 - 0.6)/2 = 0.9; 0.9 + (0.2 - 0.9)/2 = 0.55;
  # 0.55 + (4 - 0.55)/2 = 2.275 > 1: spike, v = 0; 0 + 0.4/2 = 0.2.
  out = nir_reference.simulate(_chain(lif, (1,)), x)
  np.testing.assert_array_equal(out.ravel(), [0, 0, 0, 1, 0])
  # Our LIF (tau = 2) on the same input, through the mapping: the same.
  ours = neurons.lif_multistep(jnp.asarray(x, jnp.float32), tau=2.0)
  np.testing.assert_array_equal(np.asarray(ours).ravel(), [0, 0, 0, 1, 0])


def test_reference_threshold_is_strict():
  node = nir.IF(r=np.float32([1.0]), v_threshold=np.float32([1.0]),
                v_reset=np.float32([-0.5]))
  x = np.array([1.0, 0.5, 1.0]).reshape(3, 1, 1)
  # 1.0 is not > 1; 1.5 fires and resets to -0.5; 0.5 does not fire.
  out, rec = nir_reference.simulate(_chain(node, (1,)), x, record=True)
  np.testing.assert_array_equal(out.ravel(), [0, 1, 0])
  assert rec["n"].shape == (3, 1, 1)


def _naive_conv(x, w, b, stride, pad):
  n, c, h, wd = x.shape
  o, _, kh, kw = w.shape
  xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
  y = np.zeros((n, o, oh, ow))
  for bi in range(n):
    for oi in range(o):
      for i in range(oh):
        for j in range(ow):
          patch = xp[bi, :, i * stride:i * stride + kh, j * stride:j * stride
                     + kw]
          y[bi, oi, i, j] = np.sum(patch * w[oi]) + b[oi]
  return y


def test_reference_conv_and_pooling_against_loops():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 3, 5, 6))
  w = rng.normal(size=(4, 3, 3, 3))
  b = rng.normal(size=4)
  got = nir_reference.conv2d(x, w, b, stride=(2, 2), padding=(1, 1),
                             dilation=(1, 1))
  np.testing.assert_allclose(got, _naive_conv(x, w, b, 2, 1), atol=1e-12)
  grid = np.arange(16.0).reshape(1, 1, 4, 4)
  np.testing.assert_array_equal(
      nir_reference.pool2d(grid, [2, 2], [2, 2], [0, 0], average=True),
      [[[[2.5, 4.5], [10.5, 12.5]]]])
  np.testing.assert_array_equal(
      nir_reference.pool2d(grid, [2, 2], [2, 2], [0, 0], average=False),
      [[[[10, 18], [42, 50]]]])
  assert nir_reference.flatten(np.zeros((2, 3, 4, 5)), 0, -1).shape == (2, 60)
  assert nir_reference.flatten(np.zeros((2, 3, 4, 5)), 1, 2).shape == (2, 3,
                                                                       20)


def test_reference_sums_the_inputs_of_a_node():
  a, b = np.float32([[1.0, 2.0]]), np.float32([[-3.0, 0.5]])
  graph = nir.NIRGraph(
      nodes={"input": nir.Input(input_type={"input": np.array([2])}),
             "a": nir.Linear(weight=a), "b": nir.Linear(weight=b),
             "output": nir.Output(output_type={"output": np.array([1])})},
      edges=[("input", "a"), ("input", "b"), ("a", "output"),
             ("b", "output")], metadata={"dt": 1.0})
  x = np.array([[[2.0, 4.0]]])
  out = nir_reference.simulate(graph, x)
  assert out.ravel()[0] == pytest.approx((2 + 8) + (-6 + 2))


def test_reference_refuses_cycles_and_unknown_nodes():
  lin = nir.Linear(weight=np.eye(1, dtype=np.float32))
  cyc = nir.NIRGraph(
      nodes={"input": nir.Input(input_type={"input": np.array([1])}),
             "a": lin, "b": nir.Linear(weight=np.eye(1, dtype=np.float32)),
             "output": nir.Output(output_type={"output": np.array([1])})},
      edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")],
      metadata={"dt": 1.0}, type_check=False)
  with pytest.raises(ValueError, match="cycle"):
    nir_reference.simulate(cyc, np.zeros((1, 1, 1)))
  delay = _chain(nir.Delay(delay=np.float32([1.0])), (1,))
  with pytest.raises(ValueError, match="does not run Delay"):
    nir_reference.simulate(delay, np.zeros((1, 1, 1)))


# ----------------------------------------------------------------------------
# Whole models: write, read back, simulate, compare with JAX
# ----------------------------------------------------------------------------
def _round_trip(tmp_path, model, variables, masks, input_shape):
  graph = nir_graph.to_nir(model, variables, masks, input_shape)
  path = tmp_path / "model.nir"
  nir.write(path, graph)
  return nir.read(path)


def _exact(result):
  assert result["spikes"] > 0
  assert result["spike_mismatches"] == 0, result["layers"]
  assert result["max_abs_logit_diff"] < 1e-5
  assert result["prediction_agreement"] == 1.0


def _random_batchnorm(variables, seed=0):
  """``variables`` with non-trivial BatchNorm statistics and parameters."""
  rng = np.random.default_rng(seed)

  def f(path, a):
    s = masks_lib.path_str(path)
    if "BatchNorm" not in s:
      return a
    if s.endswith(("mean", "bias")):
      return rng.normal(0.0, 0.5, a.shape).astype(a.dtype)
    return rng.uniform(0.5, 2.0, a.shape).astype(a.dtype)  # var, scale

  return jax.tree_util.tree_map_with_path(f, variables)


@pytest.fixture(name="trained_convnet", scope="module")
def _trained_convnet():
  return export_models.trained("convnet", features=(8, 16), hidden=32,
                               pooling="avg", steps=60)


def test_trained_convnet_round_trip_is_exact(tmp_path, trained_convnet):
  model, variables, masks = trained_convnet
  x, _ = export_models.digits_test()
  graph = _round_trip(tmp_path, model, variables, masks, (8, 8, 1))
  assert float(graph.metadata["dt"]) == 1e-4
  conv = graph.nodes["Conv_1"]
  assert conv.weight.shape == (16, 8, 3, 3)  # OIHW
  # Masked weights are explicit zeros, folded BatchNorm keeps them zero.
  mask = masks["Conv_1"]["kernel"].transpose(3, 2, 0, 1)
  assert not np.any(conv.weight[~mask])
  assert np.all(conv.weight[mask] != 0)
  assert graph.nodes["Dense_0"].weight.shape == (32, 16 * 2 * 2)
  np.testing.assert_array_equal(graph.nodes["AvgPool_1"].input_type["input"],
                                [16, 4, 4])
  np.testing.assert_array_equal(graph.nodes["Flatten_0"].input_type["input"],
                                [16, 2, 2])
  assert ("Flatten_0", "Dense_0") in graph.edges
  _exact(nir_verify.compare(graph, model, variables, x))


def test_nontrivial_batchnorm_statistics_are_folded(tmp_path,
                                                    trained_convnet):
  model, variables, masks = trained_convnet
  variables = _random_batchnorm(variables)
  x, _ = export_models.digits_test()
  graph = _round_trip(tmp_path, model, variables, masks, (8, 8, 1))
  result = nir_verify.compare(graph, model, variables, x)
  _exact(result)
  # The statistics matter: without folding them the graph is wrong.
  bn = variables["params"]["TimeBatchNorm_0"]["BatchNorm_0"]
  assert np.abs(np.asarray(bn["bias"])).max() > 0.1
  plain = {"params": variables["params"], "batch_stats": jax.tree.map(
      lambda a: np.ones_like(a) if a.ndim else a, variables["batch_stats"])}
  wrong = nir_graph.to_nir(model, plain, masks, (8, 8, 1))
  assert nir_verify.compare(wrong, model, variables, x)["spike_mismatches"]


def _random_model(name, input_shape, seed=0, **fields):
  """A freshly initialised model with random BatchNorm statistics and masks
  at 0.4, and its input: 48 real test digits (8x8x1) or random frames, over
  T = 2 steps."""
  model = models.create(name, num_classes=10, **fields)
  if input_shape == (8, 8, 1):
    x = export_models.digits_test(48)[0][:2]
  else:
    x = np.random.default_rng(seed).uniform(0.0, 3.0, (2, 48) + input_shape)
    x = x.astype(np.float32)
  variables = export_models.init_variables(model, x[:, :1], seed,
                                           random_batchnorm=True)
  if model.neuron == "plif":  # its own tau per layer, as once trained
    rng = np.random.default_rng(seed)
    variables["params"] = jax.tree_util.tree_map_with_path(
        lambda p, a: a + np.float32(rng.normal())
        if masks_lib.path_str(p).endswith("/w") else a, variables["params"])
  masks = export_models.random_masks(variables["params"], 0.4, seed)
  variables["params"] = masks_lib.apply_masks(variables["params"], masks)
  return model, variables, masks, x


@pytest.mark.parametrize("name,input_shape,fields", [
    ("mlp", (8, 8, 1), dict(features=(64, 32))),
    ("resnet19", (8, 8, 1), dict(stem_width=8, stage_sizes=(1, 1),
                                 stage_widths=(8, 16), stage_strides=(1, 2),
                                 hidden=16)),
    ("convnet", (8, 8, 1), dict(features=(8, 16), hidden=32,
                                pooling="max")),
    ("convnet", (8, 8, 1), dict(features=(8,), hidden=16, pooling="avg",
                                decay_input=True, tau=1.5)),
    ("convnet", (8, 8, 1), dict(features=(8,), hidden=16, pooling="avg",
                                neuron="if")),
    ("convnet", (8, 8, 1), dict(features=(8,), hidden=16, pooling="avg",
                                v_reset=-0.3, v_threshold=0.8)),
    ("vggsnn", (8, 8, 2), dict(layout=(8, "P", 16, "P"))),
    ("convnet6x2", (8, 8, 3), dict(width=8, hidden=16, voting=3)),  # PLIF
])
def test_models_round_trip_exactly(tmp_path, name, input_shape, fields):
  model, variables, masks, x = _random_model(name, input_shape, **fields)
  graph = _round_trip(tmp_path, model, variables, masks, input_shape)
  _exact(nir_verify.compare(graph, model, variables, x))
  if name == "resnet19":
    # Residual sums are edges: block 0 has an identity shortcut, block 1 a
    # 1x1 conv one.
    out0 = "BasicBlock_0.SpikingNeuron_1"
    assert ("SpikingNeuron_0", out0) in graph.edges
    assert ("BasicBlock_0.Conv_1", out0) in graph.edges
    assert ("BasicBlock_1.Conv_2", "BasicBlock_1.SpikingNeuron_1") in (
        graph.edges)
  if name == "mlp":
    # Our flatten reads HWC, NIR's CHW: with one channel the order is the
    # same, and the dense layer reads the flattened image.
    assert graph.nodes["Dense_0"].weight.shape == (64, 64)
  if model.neuron == "plif":
    taus = {float(n.tau.ravel()[0]) for n in graph.nodes.values()
            if isinstance(n, nir.LIF)}
    assert len(taus) == 7  # one per neuron layer
  if fields.get("pooling") == "max":
    assert isinstance(graph.nodes["MaxPool_0.sum"], nir.SumPool2d)
    assert isinstance(graph.nodes["MaxPool_0"], nir.Threshold)


def test_ties_at_the_threshold_fire_as_ours(tmp_path):
  """A residual output neuron whose conv input is exactly 0 receives exactly
  1.0 from a shortcut spike: we fire (>=), so the exported threshold is the
  float32 just below 1, not 1 (NIR fires at >)."""
  fields = dict(stem_width=4, stage_sizes=(1,), stage_widths=(4,),
                stage_strides=(1,), hidden=8)
  model, variables, masks, x = _random_model("resnet19", (8, 8, 1), **fields)
  block = variables["params"]["BasicBlock_0"]
  block["Conv_1"]["kernel"] = np.zeros_like(block["Conv_1"]["kernel"])
  block["TimeBatchNorm_1"]["BatchNorm_0"]["bias"] = np.zeros(4, np.float32)
  variables["batch_stats"]["BasicBlock_0"]["TimeBatchNorm_1"]["BatchNorm_0"][
      "mean"] = np.zeros(4, np.float32)
  # dt = 1: NIR's tau = 2 and r = 2 are exact, so dt / tau * r = 1 and the
  # simulated potential is exactly the input, 1.0.
  graph = nir_graph.to_nir(model, variables, masks, (8, 8, 1), dt=1.0)
  result = nir_verify.compare(graph, model, variables, x)
  _exact(result)
  assert result["layers"]["BasicBlock_0.SpikingNeuron_1"]["spikes"] > 0
  out = graph.nodes["BasicBlock_0.SpikingNeuron_1"]
  out.v_threshold = np.ones_like(out.v_threshold)  # NIR's > at exactly 1
  at_one = nir_verify.compare(graph, model, variables, x)
  assert at_one["layers"]["BasicBlock_0.SpikingNeuron_1"]["mismatches"] > 0


def test_readme_export_example_runs(tmp_path, capsys):
  readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md")
  section = readme.read_text().split("## Export\n", 1)[1].split("\n## ", 1)[0]
  block = re.findall(r"```python\n(.*?)```", section, re.S)[0]
  namespace = {}
  code = compile(block.replace("/tmp/", f"{tmp_path}/"), "README.md", "exec")
  exec(code, namespace)  # pylint: disable=exec-used
  mismatches, diff = capsys.readouterr().out.split()
  assert int(mismatches) == 0 and float(diff) < 1e-5
  assert namespace["check"]["spikes"] > 0
  assert (tmp_path / "m.nir").exists() and (tmp_path / "m.npz").exists()
