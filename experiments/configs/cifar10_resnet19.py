r"""The paper's CIFAR-10 experiment: ResNet19, T=2, PQ-index rewiring.

Data: ``cifar-10-python.tar.gz`` (or the binary tarball) in
``--config.data.manual_dir``, or a download where a network exists. Command::

  python -m experiments.main --config experiments/configs/cifar10_resnet19.py \
      --workdir /tmp/snn_sparse/cifar10_resnet19 \
      --config.data.manual_dir=/path/to/cifar

Layer-wise scope by default; ``--config.sparsity.scope=neuron`` for the
neuron-wise rows. Expected run time: about 1 day on one modern GPU (300
epochs); it is far too slow for a CPU. Expected result (the paper's Table 1):
layer-wise 92.38% at 29.72% connectivity (best iteration 4); neuron-wise
92.48% at 40.58% and 92.10% at 26.63%; dense-baseline ESL-SNN 91.09% at 50%.
The paper picks its best iteration on the test set; here 5,000 of the 50,000
training images are held out as the validation set that chooses it (45,000
are trained on, 351 steps per epoch).
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  config.data.name = "cifar10"
  config.data.batch_size = 128
  config.data.eval_batch_size = 500
  config.data.augment = True  # random crop (padding 4) and horizontal flip
  config.model.name = "resnet19"
  config.time_steps = 2
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.num_iterations = 10
  config.epochs_per_iteration = 30
  config.sparsity.rewire_every = 351  # once per epoch (45,000 / 128)
  config.log_every_steps = 117
  config.checkpoint_every_steps = 1404  # every 4 epochs
  return config
