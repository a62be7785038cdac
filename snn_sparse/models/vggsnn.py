"""VGGSNN (TET, Deng et al. 2022), the paper's DVS-CIFAR10 model.

For ``[T, B, 48, 48, 2]`` event frames: conv widths 64, 128, pool, 256, 256,
pool, 512, 512, pool, 512, 512, pool (each conv3x3-BN-neuron, average
pooling), then FC classes. About 9.27M parameters.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from snn_sparse.models.base import (SpikingModel, check_input, flatten,
                                    pooled_spikes_per_unit)


class VGGSNN(SpikingModel):
  """``[T, B, H, W, C] -> [T, B, num_classes]``; ``"P"`` in ``layout`` pools."""

  layout: Sequence[int | str] = (64, 128, "P", 256, 256, "P", 512, 512, "P",
                                 512, 512, "P")
  pooling: str = "avg"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    check_input(x, "vggsnn")
    per_unit = 1  # spikes per unit of x, for the SOP count (layers.Conv)
    for i, item in enumerate(self.layout):
      if item == "P":
        x = self.pool(x, self.pooling)
        per_unit *= pooled_spikes_per_unit(self.pooling)
      else:
        x = self.conv_bn_spike(x, int(item), train=train, first=i == 0,
                               spikes_per_unit=per_unit)
        per_unit = 1
    return self.readout(flatten(x), spikes_per_unit=per_unit)
