"""``snn_digits``: scikit-learn's 1,797 real 8x8 handwritten digits.

The images ship inside scikit-learn (``sklearn.datasets.load_digits``), so
this builder never needs a file or a network. Pixels are the original
integer counts ``0..16`` stored as uint8 ``[8, 8, 1]``; the pipeline divides
by 16 before normalising.

Split: ``order = np.random.default_rng(0).permutation(1797)``; the test
split is ``order[:360]`` and the train split ``order[360:]`` (1,437 images),
each in that order.
"""

from __future__ import annotations

import numpy as np

from snn_sparse.data.builders import base

#: Number of images in ``load_digits()``.
NUM_IMAGES = 1797
#: Seed of the fixed train/test permutation.
SPLIT_SEED = 0
#: Number of test images (the first ones of the permutation).
NUM_TEST = 360


def split_indices(seed: int = SPLIT_SEED, test_size: int = NUM_TEST
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Indices into ``load_digits()`` as ``(train [1437], test [360])``."""
  order = np.random.default_rng(seed).permutation(NUM_IMAGES)
  return order[test_size:], order[:test_size]


class SnnDigits(base.ArrayImageBuilder):
  """scikit-learn's digits: 10 classes, uint8 ``[8, 8, 1]`` in ``0..16``."""

  name = "snn_digits"
  IMAGE_SHAPE = (8, 8, 1)
  PIXEL_MAX = 16
  NUM_CLASSES = 10
  NUM_TRAIN = NUM_IMAGES - NUM_TEST
  NUM_TEST = NUM_TEST
  MEAN = (0.30488390,)
  STD = (0.37587267,)
  DESCRIPTION = (
      "The 1,797 8x8 handwritten digits of the UCI ML repository as shipped "
      "with scikit-learn; pixel values 0..16. Fixed split: seeded "
      "permutation (seed 0), the first 360 images are the test split.")
  HOMEPAGE = ("https://archive.ics.uci.edu/dataset/80/"
              "optical+recognition+of+handwritten+digits")
  CITATION = """@misc{alpaydin1998digits,
  author = {Alpaydin, E. and Kaynak, C.},
  title = {Optical Recognition of Handwritten Digits},
  year = {1998},
  howpublished = {UCI Machine Learning Repository}
}"""

  @classmethod
  def locate(cls, manual_dir, data_dir) -> None:
    """Nothing to locate: the data ships with scikit-learn."""
    del manual_dir, data_dir

  @classmethod
  def read_arrays(cls, source) -> base.SplitArrays:
    """Returns the fixed split, images uint8 ``[N, 8, 8, 1]`` in ``0..16``."""
    del source
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    data = datasets.load_digits()
    images = np.rint(data.images).astype(np.uint8)[..., None]
    labels = data.target.astype(np.int64)
    train, test = split_indices()
    return {
        "train": {"image": images[train], "label": labels[train]},
        "test": {"image": images[test], "label": labels[test]},
    }
