"""snn_sparse: sparse-from-scratch training of deep spiking neural networks.

Modules:
  neurons        surrogate spike functions and LIF / IF dynamics (pure).
  layers         Flax Linen layers: time folding, spiking neurons, tdBN,
                 convs and dense layers that count synaptic operations.
  models         spiking MLP, convnet, convnet6x2, ResNet19, VGGSNN, by name.
  losses         mean cross-entropy and TET over per-step logits.
  sparsity       PQ index, masks, rewiring and the sparsity algorithms.
  train_state    the training state and its dense-gradient update.
  steps          the jitted train and eval steps.
  metrics        accuracy, firing rates, SOPs, MACs and energy.
  data           dataset builders and the input pipeline.
  optimizers     optimizers and learning-rate schedules from a config.
  checkpointing  orbax checkpoints of the whole state.
  reporting      metrics.jsonl, summary.json and the progress line.
  train          train_and_evaluate(config, workdir): the two-stage loop.
"""

__version__ = "0.1.0"
