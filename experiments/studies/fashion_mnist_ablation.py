r"""Does PQ-adaptive rewiring beat the alternatives at equal final density?

The ablation the paper's reviewers asked for: ``pq_dst`` (layer and neuron
scope) against a constant and a cosine-decayed ratio, the dynamic-sparse
baselines (ESL, SET, RigL), static ERK, GMP, SAP and dense, and beyond the
paper the knobs ``pq_weights="mature"`` and ``protect_grown=True`` (alone and
together), which ask whether regrowth becomes lasting connections
(``grown_survival``) and whether that helps. Command (resumable; run it again
after an interruption)::

  python -m experiments.study --study fashion_mnist_ablation \
      --dir /tmp/snn_sparse/studies/fashion_mnist_ablation --jobs 2

Equal final density: ``pq_dst`` (layer scope) runs first; the target ``d`` is
the mean of its seeds' final connectivity. ESL, SET, RigL and static start at
``d``; GMP prunes to ``d``; the constant and cosine ratios are solved so
that their net prunes (after iterations 1-3) end at ``d``. The cosine ratio
decays to 0 at 75% of training (``rewire_end_fraction``), so its third net
prune removes nothing. The neuron scope, the knob arms and SAP reach their
own density (PQ-derived); dense is 1.0.

**Scale small** (``experiments/configs/fashion_mnist.py``, spiking convnet,
T = 4, batch 128, 54,000 images trained on, 421 steps per epoch): 4
iterations of 1 epoch, a rewiring event after steps 140 and 280 of each
iteration. Budget, measured on 2 CPU cores: one run alone takes 7.2-7.5
min (about 560 samples/s in training); two side by side (``--jobs 2``;
XLA runs each convolution on one core) take 11.5-12.7 min together, about
6 min per run. Runs: 11 arms x 3 seeds + 3 knob arms x 2 seeds = 39, about
4.1 h with ``--jobs 2`` on a quiet machine (4.4 h measured, some pairs
sharing it with other work; 4.8 h one at a time). Three seeds for the knob
arms would make 42 runs. 4 iterations put ``pq_dst``'s final density near
the paper's best layer-wise point (29.72% at iteration 4).

**Scale full** (a GPU): the same arms on CIFAR-10 ResNet19, T = 2, with
``experiments/configs/cifar10_resnet19.py``'s own settings (10 iterations x
30 epochs), 3 seeds for every arm: 42 runs of about a day each on one
modern GPU. Put the CIFAR-10 tarball in
``$SNN_SPARSE_DATA_DIR/downloads/manual`` (default
``~/tensorflow_datasets/downloads/manual``), where the builder looks, or run
where the download works.
"""

from experiments.studies import Arm, Study

SCALES = ("small", "full")


def _arms(knob_seeds: int) -> tuple[Arm, ...]:
  pq = {"sparsity.algorithm": "pq_dst", "sparsity.scope": "layer"}
  return (
      Arm("pq_dst", pq, target="reference",
          description="PQ-adaptive ratio, layer scope (the paper)"),
      Arm("pq_dst_neuron", {**pq, "sparsity.scope": "neuron"},
          description="PQ-adaptive ratio, neuron scope (the paper)"),
      Arm("constant_ratio", {**pq, "sparsity.ratio": "constant"},
          target="constant_ratio",
          description="constant ratio, solved to end at d"),
      Arm("cosine_ratio", {**pq, "sparsity.ratio": "cosine"},
          target="cosine_ratio",
          description="cosine-decayed ratio, solved to end at d"),
      Arm("esl", {"sparsity.algorithm": "esl"}, target="init_density",
          description="ESL-SNN: constant density d, fixed ratio"),
      Arm("set", {"sparsity.algorithm": "set"}, target="init_density",
          description="SET: constant density d, random growth"),
      Arm("rigl", {"sparsity.algorithm": "rigl"}, target="init_density",
          description="RigL: constant density d, gradient growth"),
      Arm("static", {"sparsity.algorithm": "static"}, target="init_density",
          description="static ERK mask at d"),
      Arm("gmp", {"sparsity.algorithm": "gmp"}, target="target_density",
          description="gradual magnitude pruning, dense to d"),
      Arm("sap", {"sparsity.algorithm": "sap"},
          description="SAP: iterative PQ pruning with rewind (own density)"),
      Arm("dense", {"sparsity.algorithm": "dense"},
          description="dense (connectivity 1)"),
      Arm("pq_dst_mature", {**pq, "sparsity.pq_weights": "mature"},
          num_seeds=knob_seeds,
          description="beyond the paper: PQ index over mature synapses"),
      Arm("pq_dst_protect_grown", {**pq, "sparsity.protect_grown": True},
          num_seeds=knob_seeds,
          description="beyond the paper: grown synapses spared by the net "
                      "prune"),
      Arm("pq_dst_mature_protect_grown",
          {**pq, "sparsity.pq_weights": "mature",
           "sparsity.protect_grown": True}, num_seeds=knob_seeds,
          description="beyond the paper: both knobs"),
  )


def get_study(scale: str = "small") -> Study:
  if scale == "full":
    return Study(
        name="fashion_mnist_ablation", scale="full",
        config="experiments/configs/cifar10_resnet19.py", settings={},
        arms=_arms(knob_seeds=3), seeds=(0, 1, 2),
        paired=("pq_dst", "constant_ratio"),
        budget="CIFAR-10 ResNet19, T = 2, 10 iterations x 30 epochs (the "
               "config's own); 42 runs (14 arms x 3 seeds) of about a day "
               "each on one modern GPU.")
  return Study(
      name="fashion_mnist_ablation", scale="small",
      config="experiments/configs/fashion_mnist.py",
      settings={"num_iterations": 4, "epochs_per_iteration": 1,
                "sparsity.rewire_every": 140},
      arms=_arms(knob_seeds=2), seeds=(0, 1, 2),
      paired=("pq_dst", "constant_ratio"),
      budget="convnet, T = 4, batch 128, 4 iterations x 1 epoch (421 steps), "
             "rewiring after steps 140 and 280 of each iteration. One run "
             "alone on 2 CPU cores: 7.2-7.5 min; two side by side (--jobs "
             "2): 11.5-12.7 min together. 39 runs (11 arms x 3 seeds, 3 "
             "knob arms x 2 seeds): about 4.1 h with --jobs 2.")
