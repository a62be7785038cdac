r"""PQ-index two-stage rewiring of the small spiking convnet on Fashion-MNIST.

Data: Debian's ``dataset-fashion-mnist`` package (``apt-get install
dataset-fashion-mnist``), the four official idx files in ``--config.data.
manual_dir``, or a download where a network exists. Command::

  python -m experiments.main --config experiments/configs/fashion_mnist.py \
      --workdir /tmp/snn_sparse/fashion_mnist

6,000 of the 60,000 training images are held out as the validation set that
chooses the best iteration (54,000 trained on, 421 steps per epoch).

Expected run time: about 35 minutes on 2 CPU cores (training runs at about
600 samples/s there; 20 epochs).
Expected result: test accuracy about 0.90 with connectivity falling from
0.50 to about 0.16 over the 10 iterations. A shortened run (2 iterations of
one epoch, rewiring after steps 140 and 280 of each 421-step iteration)::

  python -m experiments.main --config experiments/configs/fashion_mnist.py \
      --workdir /tmp/snn_sparse/fashion_mnist_short \
      --config.num_iterations=2 --config.epochs_per_iteration=1 \
      --config.sparsity.rewire_every=140

measured validation / test accuracy 0.879 / 0.866 at connectivity 0.50
(iteration 1) and 0.902 / 0.895 at 0.425 (iteration 2, best), with 42% of
the synapses grown in iteration 1 surviving its net prune (4.4 minutes).
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
  config.log_every_steps = 100
  return config
