"""6 conv + 2 FC: the CIFAR-10 network of the Grad R, STDS and UPR baselines.

After Fang et al. 2021 (PLIF): ``c256k3-BN-PLIF x3, MP2, c256k3-BN-PLIF x3,
MP2, dropout, FC 2048, PLIF, dropout, FC 10*voting``, then a voting layer that
averages each class's ``voting`` outputs. The last FC is analog here, so the
voted outputs are real-valued logits.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from snn_sparse.models.base import SpikingModel, check_input, flatten


class ConvNet6x2(SpikingModel):
  """``[T, B, 32, 32, 3] -> [T, B, num_classes]``. Default neuron: PLIF."""

  neuron: str = "plif"
  width: int = 256
  hidden: int = 2048
  voting: int = 10
  dropout: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    check_input(x, "convnet6x2")
    for stage in range(2):
      for i in range(3):
        x = self.conv_bn_spike(x, self.width, train=train,
                               first=stage == i == 0)
      x = self.pool(x, "max")
    # One dropout mask per sample, shared across time steps.
    drop = nn.Dropout(self.dropout, broadcast_dims=(0,), deterministic=not train)
    # A kept spike is 1 / (1 - dropout) after dropout in training (SOPs).
    per_unit = 1.0 - self.dropout if train and self.dropout > 0 else 1.0
    x = drop(flatten(x))
    x = drop(self.spike(self.dense(x, self.hidden, spikes_per_unit=per_unit)))
    x = self.dense(x, self.num_classes * self.voting, spikes_per_unit=per_unit)
    return x.reshape(x.shape[:2] + (self.num_classes, self.voting)).mean(-1)
