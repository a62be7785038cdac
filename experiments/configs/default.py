r"""Default: PQ-index two-stage rewiring of a small spiking convnet on digits.

scikit-learn's 1,797 real 8x8 digits are embedded, so this runs anywhere,
offline. Command::

  python -m experiments.main --config experiments/configs/default.py \
      --workdir /tmp/snn_sparse/default

144 of the 1,437 training digits are held out as the validation set that
chooses the best iteration; the other 1,293 are trained on (20 steps per
epoch, 5 epochs per iteration, one rewiring event after each of the first 4
epochs of an iteration, none after the 5th).

Expected run time: about 30 seconds on 2 CPU cores (1,000 steps).
Expected result (measured): connectivity 0.500, 0.405, 0.334, 0.288, 0.255,
0.228, 0.206, 0.188, 0.171, 0.157 over the 10 iterations; validation
accuracy 0.958-0.993 and test accuracy 0.975-0.986; summary.json marks
iteration 3 best (validation 0.993, test 0.986, connectivity 0.334). Of the
synapses grown during an iteration, 24% survive its net prune in iteration 1
and none from iteration 2 on (``grown_survival``): regrown synapses are
still the smallest when the net prune ranks them. With
``--config.sparsity.pq_weights=mature`` 57% survive in iteration 1 and
26-28% later, and connectivity ends at 0.291; with
``--config.sparsity.protect_grown=True`` all survive, mature synapses are
pruned instead, connectivity ends at 0.091 and test accuracy falls to 0.90
in iteration 10. The last digits vary with the convolution
implementation and the neuron loop's unrolling, which change float rounding.

Every algorithm of the registry runs from this config with
``--config.sparsity.algorithm=dense|static|set|rigl|esl|gmp|sap|pq_dst``.
"""

import ml_collections

from snn_sparse import sparsity


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "digits"
  config.data.batch_size = 64
  config.data.eval_batch_size = 360
  config.data.augment = False
  # Held out of the train split to choose the best iteration (fixed,
  # seed-independent); 0 = choose on the test split.
  config.data.validation_fraction = 0.1
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  config.data.manual_dir = ml_collections.config_dict.placeholder(str)

  config.model = ml_collections.ConfigDict()
  config.model.name = "convnet"
  config.model.neuron = "lif"
  config.model.tau = 2.0
  config.model.surrogate = "sigmoid"
  # Performance options (docs/performance.md): compute dtype of conv/dense
  # layers ("float32" | "bfloat16"), rematerialisation ("none" | "neuron" |
  # "block") and conv implementation ("auto" | "matmul_wgrad" | "xla").
  config.model.dtype = "float32"
  config.model.remat = "none"
  config.model.conv_impl = "auto"
  config.time_steps = 4
  config.loss = "ce"

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.05
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = False
  config.optimizer.weight_decay = 0.0
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.optimizer.schedule = "cosine"
  config.optimizer.warmup_epochs = 0.0
  config.optimizer.step_epochs = (30, 60)
  config.optimizer.step_factor = 0.1
  # None: the algorithm's default (sap restarts each iteration, others not).
  config.optimizer.restart_each_iteration = (
      ml_collections.config_dict.placeholder(bool))

  config.num_iterations = 10
  config.epochs_per_iteration = 5

  config.sparsity = sparsity.default_sparsity_config()
  config.sparsity.rewire_every = 20  # once per epoch (1,293 / 64)

  # Devices: a one-axis data-parallel mesh (0 = all devices). Several
  # processes (hosts): distributed=True finds them by JAX's cluster detection
  # (SLURM, Open MPI, Kubernetes, Cloud TPU); or give process 0's HOST:PORT,
  # the number of processes and this process's id (README, "Many devices
  # and hosts"). A process that does not join within join_timeout_s, or is
  # silent for heartbeat_timeout_s / 2, stops the run with a message.
  config.mesh = ml_collections.ConfigDict()
  config.mesh.num_devices = 0
  config.mesh.distributed = False
  config.mesh.coordinator_address = ""
  config.mesh.num_processes = 0  # 0: from JAX_NUM_PROCESSES or detection
  config.mesh.process_id = -1  # -1: from JAX_PROCESS_ID or detection
  config.mesh.join_timeout_s = 300
  config.mesh.heartbeat_timeout_s = 100

  # A training loss above factor x the loss of chance (ln of the number of
  # classes), averaged over a log interval, means training has diverged:
  # "stop" (with a message), "warn", or "off".
  config.divergence = ml_collections.ConfigDict()
  config.divergence.factor = 10.0
  config.divergence.action = "stop"

  config.log_every_steps = 20
  config.checkpoint_every_steps = 0  # 0: only at iteration ends
  config.max_to_keep = 2
  return config
