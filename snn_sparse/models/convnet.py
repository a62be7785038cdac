"""A small spiking convnet for 8x8 and 28x28 images."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from snn_sparse.models.base import (SpikingModel, check_input, flatten,
                                    pooled_spikes_per_unit)


class SpikingConvNet(SpikingModel):
  """``[conv3x3-BN-neuron-pool2] x len(features)``, Dense-neuron, readout.

  With the defaults: 8x8 input -> 2x2x64 -> 128 -> classes;
  28x28 input -> 7x7x64 -> 128 -> classes.
  """

  features: Sequence[int] = (32, 64)
  hidden: int = 128
  pooling: str = "max"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    check_input(x, "convnet")
    per_unit = 1  # spikes per unit of x, for the SOP count (layers.Conv)
    for i, width in enumerate(self.features):
      x = self.conv_bn_spike(x, width, train=train, first=i == 0,
                             spikes_per_unit=per_unit)
      x = self.pool(x, self.pooling)
      per_unit = pooled_spikes_per_unit(self.pooling)
    x = self.spike(self.dense(flatten(x), self.hidden,
                              spikes_per_unit=per_unit))
    return self.readout(x)
