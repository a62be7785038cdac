"""A spiking MLP for small images (8x8 digits, 28x28 Fashion-MNIST)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from snn_sparse.models.base import SpikingModel, check_input, flatten


class SpikingMLP(SpikingModel):
  """Flatten, then ``Dense -> neuron`` per entry of ``features``, then readout.

  ``[T, B, H, W, C] -> [T, B, num_classes]``.
  """

  features: Sequence[int] = (256, 128)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    check_input(x, "mlp")
    x = flatten(x)
    for i, width in enumerate(self.features):
      x = self.spike(self.dense(x, width, first=i == 0))
    return self.readout(x)
