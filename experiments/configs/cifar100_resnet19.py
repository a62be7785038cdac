r"""The paper's CIFAR-100 experiment: ResNet19, T=2, PQ-index rewiring.

Data: ``cifar-100-python.tar.gz`` (or the binary tarball) in
``--config.data.manual_dir``, or a download where a network exists. Command::

  python -m experiments.main --config experiments/configs/cifar100_resnet19.py \
      --workdir /tmp/snn_sparse/cifar100_resnet19 \
      --config.data.manual_dir=/path/to/cifar

Expected run time: about 1 day on one modern GPU. Expected result (the
paper's Table 1): layer-wise 70.30% at 29.48% connectivity, 140.27M SOPs;
ESL-SNN 73.48% at 50%. Validation: 5,000 of the 50,000 training images are
held out to choose the best iteration (45,000 trained on).
"""

from experiments.configs import cifar10_resnet19


def get_config():
  config = cifar10_resnet19.get_config()
  config.data.name = "cifar100"
  return config
