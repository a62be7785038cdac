r"""CIFAR-10 with the 6Conv2FC network of the Grad R, STDS and UPR baselines.

PLIF neurons, T=8. Data as for ``cifar10_resnet19.py``. Command::

  python -m experiments.main --config experiments/configs/cifar10_convnet6x2.py \
      --workdir /tmp/snn_sparse/cifar10_convnet6x2 \
      --config.data.manual_dir=/path/to/cifar

Expected run time: about 2 days on one modern GPU (the network has 36.7M
parameters and T=8). Expected result: around 92% test accuracy; the
literature's points on this network are STDS 92.49% at 11.33% connectivity
and UPR 92.05% at 1.16%. Validation: 5,000 of the 50,000 training images are
held out to choose the best iteration (45,000 trained on, 703 steps per
epoch).
"""

from experiments.configs import cifar10_resnet19


def get_config():
  config = cifar10_resnet19.get_config()
  config.model.name = "convnet6x2"
  config.model.neuron = "plif"
  config.time_steps = 8
  config.data.batch_size = 64
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.0
  config.sparsity.rewire_every = 703  # once per epoch (45,000 / 64)
  config.log_every_steps = 703
  config.checkpoint_every_steps = 2812  # every 4 epochs
  return config
