"""Shared fields and building blocks of the spiking models.

Every model maps ``x`` ``[T, B, H, W, C]`` to per-step logits
``[T, B, num_classes]``; the last layer is analog (no neuron), so the logits
are real-valued. Call as ``model.apply(variables, x, train=...,
mutable=["batch_stats"] if train else False)``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from snn_sparse import layers, neurons
from snn_sparse.platform import conv_cpu

DTYPES = ("float32", "bfloat16")
REMAT_MODES = ("none", "neuron", "block")
MAX_POOL_IMPLS = ("mask", "xla")


class SpikingModel(nn.Module):
  """Base class: neuron settings shared by every layer of a model.

  Attributes:
    num_classes: size of the output layer.
    neuron: the neuron kind, ``"lif"``, ``"if"``, ``"plif"`` or any name
      registered with ``neurons.register`` (see ``layers.SpikingNeuron``).
    tau, v_threshold, v_reset, decay_input, detach_reset, surrogate: the
      fields of ``neurons.NeuronParams`` (same defaults), flat for the
      config; :meth:`neuron_params` builds the one ``NeuronParams`` of every
      neuron layer from them.
    unroll: unroll factor of the neuron's time scan. ``True`` (default)
      unrolls all T steps, so XLA fuses each step's update with its
      neighbours instead of running a loop (faster and smaller for the short
      T of these models; docs/performance.md). Pass an int for long T, where
      a full unroll makes compilation slow.
    analog_input: the model input is analog (images): the first layer's
      operations are reported as MACs, not SOPs. False for event frames.
    dtype: compute dtype of the conv and dense layers, ``"float32"`` or
      ``"bfloat16"``. Parameters (the master weights) stay float32;
      BatchNorm, the neurons and the logits compute in float32.
    remat: ``"none"``; ``"neuron"``: ``jax.checkpoint`` on each neuron time
      step (see ``neurons.multistep``); ``"block"``: also checkpoint every
      residual block (models without blocks treat it as ``"neuron"``).
      Recomputation saves memory for long T and never changes results.
    conv_impl: ``"auto"``, ``"matmul_wgrad"`` or ``"xla"``: the convolution
      of ``snn_sparse.platform.conv_cpu.get_conv_fn`` (``"auto"``: the per-tap matmul
      weight gradient on CPU, XLA's convolution on GPU/TPU).
    max_pool_impl: ``"mask"`` (``layers.max_pool``: the gradient is an
      elementwise select on the saved position of each window's maximum)
      or ``"xla"`` (``flax.linen.max_pool``, whose gradient is XLA's
      select-and-scatter). Equal values and gradients.
    repeated_input: the input repeats one frame at every time step (direct
      encoding of a static image, ``layers.repeat_time``). The first layer
      and its BatchNorm then run once, on ``x[0]``, and their output is
      repeated over T: T times less work there, the same values (BatchNorm
      statistics over T identical copies are those of one) and the same
      gradients (the cotangents of the T copies are summed first). The
      operations it reports are still those of T steps (``ops_repeats`` of
      ``layers.Conv``/``Dense``). Never set it for time-varying input such
      as event frames: only ``x[0]`` would be read. The trainer sets it for
      image datasets.
  """

  num_classes: int = 10
  neuron: str = "lif"
  tau: float = neurons.NeuronParams.tau
  v_threshold: float = neurons.NeuronParams.v_threshold
  v_reset: Optional[float] = neurons.NeuronParams.v_reset
  decay_input: bool = neurons.NeuronParams.decay_input
  detach_reset: bool = neurons.NeuronParams.detach_reset
  surrogate: neurons.SurrogateLike = neurons.NeuronParams.surrogate
  unroll: int | bool = True
  analog_input: bool = True
  dtype: str = "float32"
  remat: str = "none"
  conv_impl: str = "auto"
  max_pool_impl: str = "mask"
  repeated_input: bool = False

  def pool(self, x: jax.Array, kind: str, window: int = 2) -> jax.Array:
    """:func:`pool` with this model's ``max_pool_impl``."""
    return pool(x, kind, window, max_pool_impl=self.max_pool_impl)

  def shared_fields(self) -> dict:
    """The ``SpikingModel`` fields (minus ``num_classes``), for sub-blocks."""
    names = {f.name for f in dataclasses.fields(SpikingModel)}
    return {n: getattr(self, n) for n in sorted(names - {
        "num_classes", "parent", "name"})}

  def compute_dtype(self):
    """Validates ``dtype`` and ``remat``; returns ``dtype`` as a jnp dtype."""
    if self.dtype not in DTYPES:
      raise ValueError(f"Unknown model dtype {self.dtype!r}; choose one of "
                       f"{DTYPES}.")
    if self.remat not in REMAT_MODES:
      raise ValueError(f"Unknown remat {self.remat!r}; choose one of "
                       f"{REMAT_MODES}.")
    return jnp.dtype(self.dtype)

  def neuron_params(self) -> neurons.NeuronParams:
    """The ``NeuronParams`` of this model's flat neuron fields."""
    return neurons.NeuronParams(**{
        f.name: getattr(self, f.name)
        for f in dataclasses.fields(neurons.NeuronParams)})

  def spike(self, x: jax.Array) -> jax.Array:
    """A new spiking-neuron layer applied to ``x`` ``[T, B, ...]``."""
    return layers.SpikingNeuron(
        kind=self.neuron, params=self.neuron_params(), unroll=self.unroll,
        remat=self.remat != "none")(x)

  def conv_bn(self, x, features, *, kernel=3, stride=1, train=True,
              first=False, spikes_per_unit=1.0):
    """Conv (no bias) then BatchNorm, time-folded: ``[T,B,H,W,C] -> [T,B,H',W',F]``.

    ``first`` marks the layer that reads the model input (see ``analog_input``).
    ``spikes_per_unit``: spikes that an input value of 1 stands for, for the
    SOP count (``layers.Conv``; :func:`pooled_spikes_per_unit` after a pool).
    """
    conv = layers.Conv(features, (kernel, kernel), strides=(stride, stride),
                       padding=kernel // 2 if kernel > 1 else 0,
                       use_bias=False,
                       analog_input=first and self.analog_input,
                       spikes_per_unit=spikes_per_unit,
                       ops_repeats=self._ops_repeats(x, first),
                       dtype=self.compute_dtype(),
                       conv_general_dilated=conv_cpu.get_conv_fn(
                           self.conv_impl))
    bn = layers.TimeBatchNorm(use_running_average=not train)
    return self._once_if_repeated(
        lambda v: bn(layers.time_folded(conv, v)), x, first)

  def _ops_repeats(self, x: jax.Array, first: bool) -> int:
    """How many time steps one computed step of this layer stands for."""
    return x.shape[0] if first and self.repeated_input else 1

  def _once_if_repeated(self, fn, x: jax.Array, first: bool) -> jax.Array:
    """``fn(x)``; on the first layer of a ``repeated_input`` model,
    ``fn(x[:1])`` repeated over T."""
    if self._ops_repeats(x, first) > 1:
      y = fn(x[:1])
      return jnp.broadcast_to(y, (x.shape[0],) + y.shape[1:])
    return fn(x)

  def conv_bn_spike(self, x, features, *, kernel=3, stride=1, train=True,
                    first=False, spikes_per_unit=1.0):
    """Conv, BatchNorm, spiking neuron: the basic spiking conv unit."""
    return self.spike(self.conv_bn(x, features, kernel=kernel, stride=stride,
                                   train=train, first=first,
                                   spikes_per_unit=spikes_per_unit))

  def dense(self, x, features, *, first=False, spikes_per_unit=1.0):
    """Time-folded dense layer ``[T, B, F] -> [T, B, features]``.

    ``first`` and ``spikes_per_unit`` as in :meth:`conv_bn`.
    """
    layer = layers.Dense(features, analog_input=first and self.analog_input,
                         spikes_per_unit=spikes_per_unit,
                         ops_repeats=self._ops_repeats(x, first),
                         dtype=self.compute_dtype())
    return self._once_if_repeated(lambda v: layers.time_folded(layer, v), x,
                                  first)

  def readout(self, x: jax.Array, spikes_per_unit=1.0) -> jax.Array:
    """Analog output layer: ``[T, B, F] -> [T, B, num_classes]`` (float32)."""
    return self.dense(x, self.num_classes,
                      spikes_per_unit=spikes_per_unit).astype(jnp.float32)


def check_input(x: jax.Array, name: str) -> None:
  """Raises a clear error unless ``x`` is ``[T, B, H, W, C]``."""
  if x.ndim != 5:
    raise ValueError(
        f"{name} expects time-major input [T, B, H, W, C]; got shape "
        f"{tuple(x.shape)}. Repeat static images over T with "
        "snn_sparse.layers.repeat_time(images, T).")


def pool(x: jax.Array, kind: str, window: int = 2, *,
         max_pool_impl: str = "mask") -> jax.Array:
  """Time-folded ``window``x``window`` pooling with stride ``window``.

  ``max_pool_impl``: see ``SpikingModel.max_pool_impl``.

  The layer that reads an average pool of spikes must count each pooled
  value as ``window**2`` times as many spikes: pass it
  :func:`pooled_spikes_per_unit`.
  """
  if kind == "max" and max_pool_impl not in MAX_POOL_IMPLS:
    raise ValueError(f"Unknown max_pool_impl {max_pool_impl!r}; choose one "
                     f"of {MAX_POOL_IMPLS}.")
  if kind == "max" and max_pool_impl == "mask":
    fn = lambda y: layers.max_pool(y, window)
  elif kind == "max":
    fn = lambda y: nn.max_pool(y, (window, window), (window, window))
  elif kind == "avg":
    fn = lambda y: nn.avg_pool(y, (window, window), (window, window))
  else:
    raise ValueError(f"Unknown pooling {kind!r}; choose 'max' or 'avg'.")
  return layers.time_folded(fn, x)


def pooled_spikes_per_unit(kind: str, window: int = 2) -> int:
  """Spikes that a value of 1 stands for after :func:`pool` of 0/1 spikes.

  ``"avg"``: ``window**2`` (a pooled value ``k / window**2`` is the ``k``
  spikes of the window, METHOD.md §4); ``"max"``: 1 (the pooled spike is one
  spike). Multiply for pools in series.
  """
  if kind == "avg":
    return window * window
  if kind == "max":
    return 1
  raise ValueError(f"Unknown pooling {kind!r}; choose 'max' or 'avg'.")


def flatten(x: jax.Array) -> jax.Array:
  """``[T, B, ...] -> [T, B, F]``."""
  return x.reshape(x.shape[:2] + (-1,))
