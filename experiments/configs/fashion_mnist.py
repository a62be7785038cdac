r"""PQ-index two-stage rewiring of the small spiking convnet on Fashion-MNIST.

Data: Debian's ``dataset-fashion-mnist`` package (``apt-get install
dataset-fashion-mnist``), the four official idx files in ``--config.data.
manual_dir``, or a download where a network exists. Command::

  python -m experiments.main --config experiments/configs/fashion_mnist.py \
      --workdir /tmp/snn_sparse/fashion_mnist

Expected run time: about 80 minutes on 2 CPU cores (training runs at about
250 samples/s there; 20 epochs).
Expected result: test accuracy about 0.90 with connectivity falling from
0.50 to about 0.15 over the 10 iterations. A shortened run measured 0.870 at
connectivity 0.50 (iteration 1) and 0.894 at 0.384 (iteration 2) with
``--config.num_iterations=2 --config.epochs_per_iteration=1`` (11 minutes).
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  config.data.name = "fashion_mnist"
  config.data.batch_size = 128
  config.data.eval_batch_size = 500
  config.model.name = "convnet"
  config.time_steps = 4
  config.optimizer.learning_rate = 0.05
  config.optimizer.weight_decay = 1e-4
  config.num_iterations = 10
  config.epochs_per_iteration = 2
  config.sparsity.rewire_every = 421  # once per epoch (54,000 / 128)
  config.log_every_steps = 421
  return config
