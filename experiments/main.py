r"""Train and evaluate a sparse SNN from a config file.

  python -m experiments.main --config experiments/configs/default.py \
      --workdir /tmp/snn_sparse/default [--config.sparsity.algorithm=rigl ...]

Every field of the config can be overridden with ``--config.a.b=value``.
Running the same command on the same workdir resumes the run. On Linux the
command first restarts itself once with transparent huge pages for host
memory (``snn_sparse/platform/hugepages.py``; ``SNN_SPARSE_HUGEPAGES=0`` turns it off).
"""

from absl import app, flags, logging
from ml_collections import config_flags

from snn_sparse.training import train
from snn_sparse.platform import hugepages

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.INFO)
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  hugepages.reexec()
  app.run(main)
