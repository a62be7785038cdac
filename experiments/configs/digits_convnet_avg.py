r"""The default job with average pooling: a sparse convnet that NIR can take.

The same PQ-index two-stage rewiring of the same spiking convnet on
scikit-learn's embedded 8x8 digits as ``default.py``, except that the convnet
pools by averaging (``model.pooling = "avg"``). NIR has sum and average
pooling only: ``default.py``'s max pooling of spikes exports as a sum pool
and a threshold at 0, which snnTorch's NIR importer cannot build, while this
model's pooling is a plain ``AvgPool2d`` that every NIR consumer reads
(``python -m experiments.export --format nir``). Command::

  python -m experiments.main \
      --config experiments/configs/digits_convnet_avg.py \
      --workdir /tmp/snn_sparse/digits_convnet_avg

144 of the 1,437 training digits are held out as the validation set that
chooses the best iteration; the other 1,293 are trained on (20 steps per
epoch, 5 epochs per iteration, one rewiring event after each of the first 4
epochs of an iteration, none after the 5th).

Expected run time: about 40 seconds on 2 shared CPU cores (1,000 steps).
Expected result (measured): connectivity 0.500, 0.410, 0.336, 0.286, 0.249,
0.221, 0.199, 0.179, 0.163, 0.148 over the 10 iterations; validation
accuracy 0.951-1.000 and test accuracy 0.964-0.989; summary.json marks
iteration 5 best (validation 1.000, test 0.989, connectivity 0.249). Its
NIR export, read back and simulated, gives the JAX model's spikes on all
360 test digits (989,170 spikes, none differ) and logits within 1.3e-6, and
so does snnTorch 1.0.0 (experiments/peers/nir_snntorch.py).
"""

from experiments.configs import default


def get_config():
  config = default.get_config()
  # Average pooling: a plain NIR AvgPool2d node.
  config.model.pooling = "avg"
  return config
