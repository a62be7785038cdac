r"""A seconds-long study on the embedded digits, for the test suite.

Two arms, one seed, two iterations of one epoch: ``pq_dst`` (layer scope,
the reference) and the constant-ratio net prune, whose ratio is solved so
that it ends at ``pq_dst``'s final connectivity. It exercises the runner,
the equal-density arrangement, resumption and the aggregation. Command::

  python -m experiments.study --study digits_ci --dir /tmp/snn_sparse/digits_ci

The model is the spiking MLP at its default width (the config has no
``model.features`` field to override from the command line), T = 2; 20
steps per epoch, one rewiring event after step 10 of each iteration. About
15 s per run on 2 CPU cores, most of it start-up and compilation.
"""

from experiments.studies import Arm, Study

SCALES = ("small",)


def get_study(scale: str = "small") -> Study:
  del scale  # One scale.
  return Study(
      name="digits_ci", scale="small",
      config="experiments/configs/default.py",
      settings={"model.name": "mlp", "time_steps": 2, "num_iterations": 2,
                "epochs_per_iteration": 1, "sparsity.rewire_every": 10,
                "log_every_steps": 10},
      seeds=(0,),
      arms=(
          Arm("pq_dst", {"sparsity.algorithm": "pq_dst",
                         "sparsity.scope": "layer"}, target="reference",
              description="PQ-adaptive ratio, layer scope"),
          Arm("constant_ratio", {"sparsity.algorithm": "pq_dst",
                                 "sparsity.ratio": "constant"},
              target="constant_ratio",
              description="constant ratio, solved for equal final density"),
      ),
      paired=("pq_dst", "constant_ratio"),
      budget="2 runs x (2 iterations x 1 epoch of 1,293 digits), T = 2.")
