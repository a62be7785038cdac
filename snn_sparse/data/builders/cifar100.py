"""``snn_cifar100``: CIFAR-100, 60,000 32x32 colour images in 100 classes.

Built from the official ``cifar-100-python.tar.gz`` or
``cifar-100-binary.tar.gz`` (or their extracted directories) found in
``manual_dir`` or ``<data_dir>/downloads/manual``, or downloaded there where
a network exists. Images are uint8 ``[32, 32, 3]`` (HWC) in ``0..255``.
``label`` is the fine label (100 classes, used for training);
``coarse_label`` (20 superclasses) is stored as well.
"""

from __future__ import annotations

from snn_sparse.data.builders import base
from snn_sparse.data.builders import cifar_common


class SnnCifar100(cifar_common.CifarBuilder):
  """CIFAR-100: 100 fine classes (+20 coarse), uint8 ``[32, 32, 3]``."""

  name = "snn_cifar100"
  NUM_CLASSES = 100
  EXTRA_LABELS = {"coarse_label": 20}
  MEAN = (0.50707516, 0.48654887, 0.44091784)
  STD = (0.26733429, 0.25643846, 0.27615047)
  DESCRIPTION = ("CIFAR-100: 32x32 colour images in 100 fine classes grouped "
                 "into 20 coarse classes; 50,000 train and 10,000 test.")
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Put {cifar_common.CIFAR100.python_tar} (or "
      f"{cifar_common.CIFAR100.binary_tar}) from {cifar_common.HOMEPAGE} "
      "into manual_dir.")

  @classmethod
  def locate(cls, manual_dir, data_dir) -> cifar_common.CifarSource:
    """Finds or downloads the tarball (see ``cifar_common.locate``)."""
    return cifar_common.locate(cifar_common.CIFAR100, manual_dir, data_dir)

  @classmethod
  def read_arrays(cls, source: cifar_common.CifarSource) -> base.SplitArrays:
    """Returns ``{split: {"image", "label" (fine), "coarse_label"}}``."""
    layout = cifar_common.CIFAR100
    if source.fmt == "python":
      return cifar_common.read_python(
          layout, source, {"label": "fine_labels",
                           "coarse_label": "coarse_labels"})
    return cifar_common.read_binary(
        layout, source, {"label": 1, "coarse_label": 0})
