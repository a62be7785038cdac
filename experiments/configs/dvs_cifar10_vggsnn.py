r"""The paper's DVS-CIFAR10 experiment: VGGSNN, T=10, TET, PQ-index rewiring.

Data: the official CIFAR10-DVS release
(https://doi.org/10.6084/m9.figshare.4724671), the ten class archives or
their extracted folders, in ``manual_dir``::

  /path/to/cifar10_dvs/airplane/cifar10_airplane_0.aedat ... _999.aedat
  /path/to/cifar10_dvs/automobile/cifar10_automobile_0.aedat ...
  ... bird/ cat/ deer/ dog/ frog/ horse/ ship/ truck/
  (or /path/to/cifar10_dvs/airplane.zip ... truck.zip)

The first run builds the dataset once (10 frames per recording by equal
event counts, resized to 48x48; 9,000 train / 1,000 test, the per-class 9:1
split; see ``snn_sparse/data/builders/cifar10_dvs.py``). Command::

  python -m experiments.main --config experiments/configs/dvs_cifar10_vggsnn.py \
      --workdir /tmp/snn_sparse/dvs_cifar10_vggsnn \
      --config.data.manual_dir=/path/to/cifar10_dvs

Training uses the common VGGSNN/TET recipe: event frames as spike counts
(``analog_input=False``), TET loss, random horizontal flips and circular
rolls by up to 5 pixels. Layer-wise PQ-index rewiring with the paper's
defaults (p=0.5, q=1, alpha_r=0.001, gamma=1, beta=0.9).

Expected run time: building the dataset reads 10,000 recordings once, an
estimated few minutes on a CPU (framing and resizing take about 13 ms per
200,000-event recording); training is 300 epochs (10 iterations of 30), an
estimated half a day on one modern GPU (about 80 GFLOP per sample for
forward and backward at T=10); it is far too slow for a CPU.
Expected result (the paper's Table 1): 78.4% test accuracy at 30%
connectivity, 189.02M SOPs per sample (our SOPs count every input event and
every spike behind an average pool, see ``snn_sparse.metrics``).
Validation: 900 of the 9,000 training recordings are held out to choose the
best iteration (8,100 trained on, 126 steps per epoch).
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  config.data.name = "cifar10_dvs"
  config.data.batch_size = 64
  config.data.eval_batch_size = 100
  config.data.augment = True  # random horizontal flip and roll (+-5 pixels)
  config.model.name = "vggsnn"
  config.model.analog_input = False  # event frames are spike counts
  config.time_steps = 10
  config.loss = "tet"
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.optimizer.schedule = "cosine"
  config.num_iterations = 10
  config.epochs_per_iteration = 30
  config.sparsity.algorithm = "pq_dst"
  config.sparsity.scope = "layer"
  config.sparsity.rewire_every = 126  # once per epoch (8,100 / 64)
  config.log_every_steps = 42
  config.checkpoint_every_steps = 504  # every 4 epochs
  return config
