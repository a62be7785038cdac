"""snn_sparse: sparse-from-scratch training of deep spiking neural networks.

The composable library:
  neurons        NeuronParams, neuron step functions, multistep, a registry.
  layers         Flax Linen layers: time folding, spiking neurons, tdBN,
                 convs and dense layers that count synaptic operations.
  models         spiking MLP, convnet, convnet6x2, ResNet19, VGGSNN, by name.
  losses         mean cross-entropy and TET over per-step logits.
  metrics        accuracy, firing rates, SOPs, MACs and energy.
  sparsity       pure sparsity algorithms over pytrees (optax style).
  data           dataset builders and the input pipeline.
  export         a trained sparse network out: a compressed file, or NIR.

The harness (training/): train_and_evaluate, the jitted steps, the
training state, optimizers, verified checkpoints, the device mesh and
multi-process runs, config and workdir checks, logs and plots.

Platform tweaks (platform/): faster XLA CPU convolution gradients and huge
pages, selected only on the CPU.
"""

__version__ = "0.1.0"
