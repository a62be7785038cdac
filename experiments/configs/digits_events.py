r"""Offline events: PQ-index rewiring of a spiking convnet on emulated events.

``digits_events`` turns scikit-learn's embedded 8x8 digits (upsampled to
16x16) into event streams with an emulated event camera moving along three
N-MNIST-style saccades, framed into T=6 per-polarity count frames (see
``snn_sparse/data/builders/digits_events.py``). It needs no files and no
network, so the event pipeline and the DVS recipe (spike-count input,
``analog_input=False``, TET loss) run end to end anywhere. Command::

  python -m experiments.main --config experiments/configs/digits_events.py \
      --workdir /tmp/snn_sparse/digits_events

144 of the 1,437 training examples are held out as the validation set that
chooses the best iteration (1,293 trained on, 20 steps per epoch).

Expected run time: about 1 minute on 2 CPU cores (measured: 61 s for 400
steps, including building the dataset on first use).
Expected result (measured): test accuracy 0.942, 0.975, 0.975, 0.983, 0.978
and validation accuracy 0.917, 0.951, 0.965, 0.965, 0.972 at connectivity
0.500, 0.416, 0.353, 0.307, 0.269; summary.json marks iteration 5 best (on
validation). 35% of the synapses grown in iteration 1 survive its net prune,
none later. SOPs per sample (every input event counted) fall from 1.11M to
0.61M.
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  config.data.name = "digits_events"
  config.data.batch_size = 64
  config.data.eval_batch_size = 360
  config.data.augment = False
  config.model.name = "convnet"
  config.model.analog_input = False  # event frames are spike counts
  config.time_steps = 6  # must equal the dataset's frames
  config.loss = "tet"
  config.num_iterations = 5
  config.epochs_per_iteration = 4
  config.sparsity.rewire_every = 20  # once per epoch (1,293 / 64)
  config.log_every_steps = 20
  return config
