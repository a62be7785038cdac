"""Spiking models by name: ``create(name, num_classes=..., **overrides)``.

Every model maps ``[T, B, H, W, C]`` to per-step logits ``[T, B, classes]``
and is a Flax Linen module called as ``model.apply(variables, x, train=...)``.
Prunable kernels are the ``kernel`` leaves of its Conv and Dense layers
(``snn_sparse.sparsity.masks.PRUNABLE_PATTERN``).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from snn_sparse.models.base import SpikingModel
from snn_sparse.models.convnet import SpikingConvNet
from snn_sparse.models.convnet6x2 import ConvNet6x2
from snn_sparse.models.mlp import SpikingMLP
from snn_sparse.models.resnet19 import BasicBlock, ResNet19
from snn_sparse.models.vggsnn import VGGSNN

MODELS = {
    "mlp": SpikingMLP,
    "convnet": SpikingConvNet,
    "convnet6x2": ConvNet6x2,
    "resnet19": ResNet19,
    "vggsnn": VGGSNN,
}


def create(name: str, num_classes: int = 10, **overrides) -> nn.Module:
  """Builds the model ``name`` with ``num_classes`` outputs.

  ``overrides`` set any field of the model class (e.g. ``neuron="plif"``,
  ``tau=1.5``, ``surrogate="atan"``, ``features=(64,)``). Unknown names or
  fields raise a ``ValueError`` that lists the valid ones.
  """
  if name not in MODELS:
    raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
  cls = MODELS[name]
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
  unknown = set(overrides) - fields
  if unknown:
    raise ValueError(f"Model {name!r} has no field(s) {sorted(unknown)}; "
                     f"valid fields: {sorted(fields)}.")
  return cls(num_classes=num_classes, **overrides)


__all__ = ["MODELS", "create", "SpikingModel", "SpikingMLP", "SpikingConvNet",
           "ConvNet6x2", "ResNet19", "BasicBlock", "VGGSNN"]
