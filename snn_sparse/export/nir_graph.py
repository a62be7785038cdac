"""A trained spiking model as a NIR graph: ``to_nir(model, variables, masks,
input_shape)``.

The graph describes one time step of the network per sample, in NIR's
PyTorch-style layouts (no batch axis): images ``[C, H, W]``, conv weights
OIHW, dense weights ``(out, in)``. Feed it one input per time step: for our
image models (direct encoding) the same image at every step, for event
frames the frame of that step. Its output at each step is the model's
per-step logits ``[classes]``.

* BatchNorm (eval mode, running statistics) is folded into the conv before
  it (``bn_fold``); the conv gets the folded bias.
* Masked weights are written as explicit zeros.
* Flatten and pooling nodes carry their input types (``nir.write`` stores
  Flatten's; NIR 1.0.8 does not store a pooling node's, and ``nir.read``
  infers it again from the graph's input). Our flatten reads ``[H, W, C]``
  and NIR's ``[C, H, W]``, so the dense layer after a flatten gets its input
  columns permuted to match.
* Average pooling is ``AvgPool2d``; a global average pool is an
  ``AvgPool2d`` over the whole map followed by ``Flatten``. NIR has no max
  pooling, but the max of a window of 0/1 spikes is 1 exactly when their
  sum is positive: max pooling of spikes is a ``SumPool2d`` and a
  ``Threshold`` at 0 (max pooling of anything else is refused).
* A residual block sums by edges: the block's second conv and its shortcut
  (a 1x1 conv, or the block input itself) both feed the block's output
  neurons, and NIR sums a node's inputs.
* Neurons map as in ``nir_neurons`` at the time step ``dt`` (default
  ``1e-4``, the value snnTorch's importer assumes), written in
  ``graph.metadata`` with the model's name and the encoding.

Node names are the Flax module paths joined by ``.`` (``Conv_0``,
``BasicBlock_1.SpikingNeuron_0``, ...; a max pool ``MaxPool_0.sum`` and
``MaxPool_0``); a conv node names its folded BatchNorm in its metadata.
Exportable: ``mlp``, ``convnet``, ``vggsnn``, ``convnet6x2`` (its voting
layer folded into the last dense one) and ``resnet19``, at any widths and
depths; neurons as ``nir_neurons`` allows.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from snn_sparse import layers, models
from snn_sparse.export import bn_fold
from snn_sparse.export.nir_neurons import (NIRExportError, check_neuron,
                                           import_nir, neuron_node)
from snn_sparse.sparsity.masks import apply_masks

PyTree = Any
DEFAULT_DT = 1e-4


class _Builder:
  """Nodes and edges of a graph under construction, with per-node shapes."""

  def __init__(self, model, variables, masks, dt):
    self.nir = import_nir()
    self.model = model
    params = variables["params"]
    self.params = params if masks is None else apply_masks(params, masks)
    self.stats = variables.get("batch_stats", {})
    self.dt = dt
    self.nodes, self.edges, self.shapes = {}, [], {}
    self.neuron_kind = model.neuron
    self.neuron_params = model.neuron_params()
    check_neuron(self.neuron_kind, self.neuron_params)

  def add(self, name: str, node, shape, *inputs: str) -> str:
    self.nodes[name] = node
    self.shapes[name] = tuple(int(s) for s in shape)
    self.edges += [(i, name) for i in inputs]
    return name

  def tree(self, tree, path: str):
    for key in path.split("."):
      tree = tree[key]
    return tree

  def conv_bn(self, x: str, path: str, conv: str, bn: str, *, stride: int):
    """``path.conv`` + ``path.bn`` folded into one ``Conv2d``."""
    name = _join(path, conv)
    kernel = np.asarray(self.tree(self.params, name)["kernel"])
    bn_params = self.tree(self.params, _join(path, bn))["BatchNorm_0"]
    stats = self.tree(self.stats, _join(path, bn))["BatchNorm_0"]
    w, b = bn_fold.fold_batchnorm(
        kernel, bn_params["scale"], bn_params["bias"], stats["mean"],
        stats["var"], eps=layers.TimeBatchNorm.epsilon)
    kh, kw, _, cout = kernel.shape
    pad = kh // 2 if kh > 1 else 0  # as SpikingModel.conv_bn pads
    _, h, wd = self.shapes[x]
    node = self.nir.Conv2d(
        input_shape=(h, wd), weight=np.ascontiguousarray(
            w.transpose(3, 2, 0, 1)),
        stride=(stride, stride), padding=(pad, pad), dilation=(1, 1),
        groups=1, bias=b, metadata={"batchnorm": _join(path, bn)})
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    return self.add(name, node, (cout, oh, ow), x)

  def spike(self, x: str, name: str) -> str:
    tau = None
    if self.neuron_kind == "plif":  # its layer's trained tau = 1/sigmoid(w)
      w = np.float32(self.tree(self.params, name)["w"])
      tau = np.float32(1.0) / (np.float32(1.0) / (np.float32(1.0)
                                                  + np.exp(-w)))
    node = neuron_node(self.neuron_kind, self.neuron_params, self.shapes[x],
                       dt=self.dt, tau=tau)
    return self.add(name, node, self.shapes[x], x)

  def avg_pool(self, x: str, name: str, window) -> str:
    c, h, w = self.shapes[x]
    kh, kw = window
    node = self.nir.AvgPool2d(kernel_size=np.array([kh, kw]),
                              stride=np.array([kh, kw]),
                              padding=np.array([0, 0]))
    out = (c, h // kh, w // kw)
    node.input_type = {"input": np.array([c, h, w])}
    node.output_type = {"output": np.array(out)}
    return self.add(name, node, out, x)

  def max_pool_spikes(self, x: str, name: str, window) -> str:
    """Max pooling of 0/1 spikes: a window's max is 1 exactly when its sum
    is > 0, so it is ``SumPool2d`` then ``Threshold(0)``."""
    if not isinstance(self.nodes[x], (self.nir.LIF, self.nir.IF)):
      raise NIRExportError(
          f"{name}: max pooling of {x}, which is not a layer of spikes. NIR "
          "has sum and average pooling only; max pooling is exported only "
          "for 0/1 spikes (as a sum pool and a threshold at 0).")
    c, h, w = self.shapes[x]
    kh, kw = window
    out = (c, h // kh, w // kw)
    node = self.nir.SumPool2d(kernel_size=np.array([kh, kw]),
                              stride=np.array([kh, kw]),
                              padding=np.array([0, 0]))
    node.input_type = {"input": np.array([c, h, w])}
    node.output_type = {"output": np.array(out)}
    total = self.add(f"{name}.sum", node, out, x)
    return self.add(name, self.nir.Threshold(
        threshold=np.zeros(out, np.float32)), out, total)

  def pool(self, x: str, kind: str, index: int, window=(2, 2)) -> str:
    """``models.base.pool`` of ``kind`` ``"avg"`` or ``"max"``."""
    if kind == "avg":
      return self.avg_pool(x, f"AvgPool_{index}", window)
    if kind == "max":
      return self.max_pool_spikes(x, f"MaxPool_{index}", window)
    raise NIRExportError(f"pooling={kind!r} has no NIR export.")

  def flatten(self, x: str, name: str) -> str:
    shape = self.shapes[x]
    node = self.nir.Flatten(input_type={"input": np.array(shape)},
                            start_dim=0, end_dim=-1)
    return self.add(name, node, (int(np.prod(shape)),), x)

  def dense(self, x: str, name: str, *, chw=None, voting: int = 1) -> str:
    """``Affine`` of Dense ``name``; ``chw``: the ``(C, H, W)`` that was
    flattened into ``x`` (our rows are in HWC order, NIR's in CHW);
    ``voting``: the outputs are the means of groups of this many (folded
    into the weights)."""
    p = self.tree(self.params, name)
    kernel = np.asarray(p["kernel"], np.float32)
    bias = np.asarray(p["bias"], np.float32)
    if chw is not None:
      c, h, w = chw
      kernel = kernel[np.arange(h * w * c).reshape(h, w, c)
                      .transpose(2, 0, 1).ravel()]
    if voting > 1:
      kernel = kernel.reshape(kernel.shape[0], -1, voting).mean(-1)
      bias = bias.reshape(-1, voting).mean(-1)
    node = self.nir.Affine(weight=np.ascontiguousarray(kernel.T), bias=bias)
    return self.add(name, node, (kernel.shape[1],), x)

  def graph(self, output: str, metadata: dict):
    self.add("output", self.nir.Output(
        output_type={"output": np.array(self.shapes[output])}),
             self.shapes[output], output)
    return self.nir.NIRGraph(nodes=self.nodes, edges=self.edges,
                             metadata=metadata)


def _join(*parts: str) -> str:
  return ".".join(p for p in parts if p)


def _input(b: _Builder, input_shape) -> tuple[str, tuple]:
  h, w, c = input_shape
  b.add("input", b.nir.Input(input_type={"input": np.array([c, h, w])}),
        (c, h, w))
  return "input", (c, h, w)


def _mlp(b: _Builder, model, input_shape) -> str:
  x, chw = _input(b, input_shape)
  x = b.flatten(x, "Flatten_0")
  for i in range(len(model.features)):
    x = b.spike(b.dense(x, f"Dense_{i}", chw=chw if i == 0 else None),
                f"SpikingNeuron_{i}")
  return b.dense(x, f"Dense_{len(model.features)}")


def _convnet(b: _Builder, model, input_shape) -> str:
  x, _ = _input(b, input_shape)
  for i in range(len(model.features)):
    x = b.conv_bn(x, "", f"Conv_{i}", f"TimeBatchNorm_{i}", stride=1)
    x = b.spike(x, f"SpikingNeuron_{i}")
    x = b.pool(x, model.pooling, i)
  chw = b.shapes[x]
  x = b.flatten(x, "Flatten_0")
  k = len(model.features)
  x = b.spike(b.dense(x, "Dense_0", chw=chw), f"SpikingNeuron_{k}")
  return b.dense(x, "Dense_1")


def _vggsnn(b: _Builder, model, input_shape) -> str:
  x, _ = _input(b, input_shape)
  conv, pool = 0, 0
  for item in model.layout:
    if item == "P":
      x = b.pool(x, model.pooling, pool)
      pool += 1
    else:
      x = b.conv_bn(x, "", f"Conv_{conv}", f"TimeBatchNorm_{conv}", stride=1)
      x = b.spike(x, f"SpikingNeuron_{conv}")
      conv += 1
  chw = b.shapes[x]
  return b.dense(b.flatten(x, "Flatten_0"), "Dense_0", chw=chw)


def _convnet6x2(b: _Builder, model, input_shape) -> str:
  x, _ = _input(b, input_shape)
  conv = 0
  for stage in range(2):
    for _ in range(3):
      x = b.conv_bn(x, "", f"Conv_{conv}", f"TimeBatchNorm_{conv}", stride=1)
      x = b.spike(x, f"SpikingNeuron_{conv}")
      conv += 1
    x = b.pool(x, "max", stage)
  chw = b.shapes[x]  # dropout is the identity in eval mode
  x = b.spike(b.dense(b.flatten(x, "Flatten_0"), "Dense_0", chw=chw),
              f"SpikingNeuron_{conv}")
  return b.dense(x, "Dense_1", voting=model.voting)


def _resnet19(b: _Builder, model, input_shape) -> str:
  x, _ = _input(b, input_shape)
  x = b.spike(b.conv_bn(x, "", "Conv_0", "TimeBatchNorm_0", stride=1),
              "SpikingNeuron_0")
  k = 0
  for size, width, stride in zip(model.stage_sizes, model.stage_widths,
                                 model.stage_strides):
    for i in range(size):
      block = f"BasicBlock_{k}"
      s = stride if i == 0 else 1
      y = b.spike(b.conv_bn(x, block, "Conv_0", "TimeBatchNorm_0", stride=s),
                  _join(block, "SpikingNeuron_0"))
      y = b.conv_bn(y, block, "Conv_1", "TimeBatchNorm_1", stride=1)
      shortcut = x
      if s != 1 or b.shapes[x][0] != width:
        shortcut = b.conv_bn(x, block, "Conv_2", "TimeBatchNorm_2", stride=s)
      out = _join(block, "SpikingNeuron_1")
      # NIR sums the inputs of a node: the residual sum is two edges.
      b.edges.append((shortcut, out))
      x = b.spike(y, out)
      k += 1
  c, h, w = b.shapes[x]
  x = b.flatten(b.avg_pool(x, "AvgPool_0", (h, w)), "Flatten_0")
  x = b.spike(b.dense(x, "Dense_0"), "SpikingNeuron_1")
  return b.dense(x, "Dense_1")


EXPORTERS: dict[type, tuple[str, Callable]] = {
    models.SpikingMLP: ("mlp", _mlp),
    models.SpikingConvNet: ("convnet", _convnet),
    models.VGGSNN: ("vggsnn", _vggsnn),
    models.ConvNet6x2: ("convnet6x2", _convnet6x2),
    models.ResNet19: ("resnet19", _resnet19),
}


def to_nir(model, variables: PyTree, masks: PyTree, input_shape, *,
           dt: float = DEFAULT_DT):
  """The NIR graph of ``model`` with ``variables`` and ``masks``.

  Args:
    model: a model of ``snn_sparse.models``: ``mlp``, ``convnet``,
      ``vggsnn``, ``convnet6x2`` or ``resnet19``.
    variables: ``{"params": ..., "batch_stats": ...}`` (eval mode: the
      running statistics are folded).
    masks: the mask tree of ``params`` (``None``: dense); masked weights
      are written as zeros.
    input_shape: one input ``(H, W, C)``, as the model reads it.
    dt: NIR's time per model step (see ``nir_neurons``).

  The graph holds the float32 weights: a model with ``dtype="bfloat16"``
  computes its layers in bfloat16, so its spikes can differ from the
  graph's.

  Returns:
    A type-checked ``nir.NIRGraph`` (see the module docstring); write it
    with ``nir.write(path, graph)``.

  Raises:
    NIRExportError: the model or its neurons cannot be expressed in NIR;
      the message says what to change.
  """
  if type(model) not in EXPORTERS:
    names = ", ".join(name for name, _ in EXPORTERS.values())
    raise NIRExportError(
        f"No NIR exporter for {type(model).__name__}; exportable models: "
        f"{names}. A new model class needs its own entry in "
        "snn_sparse.export.nir_graph.EXPORTERS.")
  if len(tuple(input_shape)) != 3:
    raise ValueError(f"input_shape must be (H, W, C); got {input_shape!r}.")
  name, build = EXPORTERS[type(model)]
  b = _Builder(model, variables, masks, float(dt))
  output = build(b, model, tuple(int(s) for s in input_shape))
  metadata = {"producer": "snn_sparse", "model": name, "dt": float(dt),
              "neuron": model.neuron,
              "input": "one [C, H, W] input per time step: an image "
                       "normalised as snn_sparse.data.pipeline.normalize, "
                       "the same at every step, or an event frame",
              "output": "per-step logits"}
  return b.graph(output, metadata)
