"""``snn_cifar10``: CIFAR-10, 60,000 32x32 colour images in 10 classes.

Built from the official ``cifar-10-python.tar.gz`` or
``cifar-10-binary.tar.gz`` (or their extracted directories) found in
``manual_dir`` or ``<data_dir>/downloads/manual``, or downloaded there where
a network exists. Images are uint8 ``[32, 32, 3]`` (HWC) in ``0..255``; the
splits keep the official order (``data_batch_1..5``, ``test_batch``).
"""

from __future__ import annotations

from snn_sparse.data.builders import base
from snn_sparse.data.builders import cifar_common

#: Class names, index = label.
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
               "horse", "ship", "truck")


class SnnCifar10(cifar_common.CifarBuilder):
  """CIFAR-10: 10 classes, uint8 ``[32, 32, 3]``, 50,000/10,000."""

  name = "snn_cifar10"
  NUM_CLASSES = len(LABEL_NAMES)
  MEAN = (0.49139968, 0.48215841, 0.44653091)
  STD = (0.24703223, 0.24348513, 0.26158784)
  DESCRIPTION = ("CIFAR-10: 32x32 colour images in 10 classes; 50,000 train "
                 "and 10,000 test images.")
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Put {cifar_common.CIFAR10.python_tar} (or "
      f"{cifar_common.CIFAR10.binary_tar}) from {cifar_common.HOMEPAGE} into "
      "manual_dir.")

  @classmethod
  def locate(cls, manual_dir, data_dir) -> cifar_common.CifarSource:
    """Finds or downloads the tarball (see ``cifar_common.locate``)."""
    return cifar_common.locate(cifar_common.CIFAR10, manual_dir, data_dir)

  @classmethod
  def read_arrays(cls, source: cifar_common.CifarSource) -> base.SplitArrays:
    """Returns ``{split: {"image": [N, 32, 32, 3], "label": [N]}}``."""
    layout = cifar_common.CIFAR10
    if source.fmt == "python":
      return cifar_common.read_python(layout, source, {"label": "labels"})
    return cifar_common.read_binary(layout, source, {"label": 0})
