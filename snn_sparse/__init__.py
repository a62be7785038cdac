"""snn_sparse: sparse-from-scratch training of deep spiking neural networks.

Modules:
  neurons   surrogate spike functions and LIF / IF / PLIF dynamics (pure).
  layers    Flax Linen layers: time folding, spiking neurons, tdBN.
  models    spiking MLP, convnet, convnet6x2, ResNet19, VGGSNN, by name.
  losses    mean cross-entropy and TET over per-step logits.
  sparsity  PQ index, masks, rewiring and the sparsity algorithms.
"""

__version__ = "0.1.0"
