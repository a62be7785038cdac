"""Spiking ResNet19 (tdBN, Zheng et al. 2021), the paper's CIFAR model.

conv3x3-128 stem; three stages of basic blocks, [3, 3, 2] blocks of width
[128, 256, 512] with strides [1, 2, 2]; global average pool; FC 256, neuron;
FC classes. About 12.7M parameters at 10 classes.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from snn_sparse.models.base import SpikingModel, check_input


class BasicBlock(SpikingModel):
  """``conv-BN-neuron-conv-BN (+ shortcut) -> neuron``; 1x1 conv-BN shortcut
  when the stride or the width changes."""

  features: int = 128
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    y = self.conv_bn_spike(x, self.features, stride=self.stride, train=train)
    y = self.conv_bn(y, self.features, train=train)
    if self.stride != 1 or x.shape[-1] != self.features:
      x = self.conv_bn(x, self.features, kernel=1, stride=self.stride,
                       train=train)
    return self.spike(y + x)


class ResNet19(SpikingModel):
  """``[T, B, H, W, C] -> [T, B, num_classes]``."""

  stem_width: int = 128
  stage_sizes: Sequence[int] = (3, 3, 2)
  stage_widths: Sequence[int] = (128, 256, 512)
  stage_strides: Sequence[int] = (1, 2, 2)
  hidden: int = 256

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    check_input(x, "resnet19")
    fields = self.shared_fields()
    # remat="block": recompute each block in the backward pass. The explicit
    # name keeps the parameter paths (BasicBlock_<k>) of the plain model.
    block_cls = (nn.remat(BasicBlock, static_argnums=(2,))
                 if self.remat == "block" else BasicBlock)
    x = self.conv_bn_spike(x, self.stem_width, train=train, first=True)
    k = 0
    for size, width, stride in zip(self.stage_sizes, self.stage_widths,
                                   self.stage_strides):
      for i in range(size):
        x = block_cls(features=width, stride=stride if i == 0 else 1,
                      name=f"BasicBlock_{k}", **fields)(x, train)
        k += 1
    # Global average pool, [T, B, C]: a value of 1 is H*W spikes (SOPs).
    per_unit = x.shape[2] * x.shape[3]
    x = jnp.mean(x, axis=(2, 3))
    x = self.spike(self.dense(x, self.hidden, spikes_per_unit=per_unit))
    return self.readout(x)
