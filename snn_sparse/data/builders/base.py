"""The TFDS builder base classes: every builder's, and the image datasets'.

A concrete builder supplies two class methods:

* ``locate(manual_dir, data_dir)`` finds (or downloads) the source files and
  raises :class:`~snn_sparse.data.builders.common.DataNotFoundError`, with a
  message saying where to put them, when it cannot;
* ``read_arrays(source)`` parses them into in-memory numpy arrays.

The base class writes them as ``array_record`` files with ``Tensor`` features
only (no ``Image`` feature), so neither building nor reading needs
TensorFlow. Each split keeps the source order (``disable_shuffling``), and the
per-channel mean and standard deviation of the train split are recorded in
the dataset's metadata (``metadata.json``).

Every builder is registered with TFDS under a name prefixed with ``snn_``, so
it can never collide with a TFDS built-in builder such as ``cifar10``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from snn_sparse.data.builders import common

#: Split name -> feature name -> array, e.g. ``arrays["train"]["image"]``.
SplitArrays = Mapping[str, Mapping[str, np.ndarray]]


class SnnBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """What every snn_sparse builder shares: version, data dir, info, sources.

  Subclasses set ``DESCRIPTION``, ``HOMEPAGE`` and ``CITATION``, implement
  ``locate`` and ``_features``, and build their splits from
  :meth:`_locate_source`. They also declare the dataset's facts, the only
  place each is stated (:mod:`snn_sparse.data.catalog` reads them):
  ``NUM_CLASSES``, the official split sizes ``NUM_TRAIN`` and ``NUM_TEST``,
  the normalisation ``MEAN``, ``STD`` and ``PIXEL_MAX``, and the defaults of
  training augmentation ``CROP_PADDING``, ``FLIP`` and ``ROLL``.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  NUM_CLASSES: int = 0
  SPLITS: tuple[str, ...] = ("train", "test")
  #: Sizes of the official train and test splits.
  NUM_TRAIN: int = 0
  NUM_TEST: int = 0
  #: Per-channel mean and std of ``value / PIXEL_MAX`` over the official
  #: train split (:func:`channel_stats`), with which the pipeline normalises.
  MEAN: tuple[float, ...] = ()
  STD: tuple[float, ...] = ()
  #: The stored value that maps to 1.0.
  PIXEL_MAX: int = 255
  #: Random-crop padding (0: none), random horizontal flip, and maximal
  #: circular shift in pixels (0: none) of training with ``augment=True``.
  #: Never flip digits or gestures: they are not mirror-symmetric.
  CROP_PADDING: int = 0
  FLIP: bool = False
  ROLL: int = 0
  DESCRIPTION = ""
  HOMEPAGE = ""
  CITATION = ""

  def __init__(self, *, data_dir: str | os.PathLike | None = None,
               file_format: str = "array_record", **kwargs):
    """Creates the builder; ``data_dir`` defaults to the snn_sparse one."""
    super().__init__(data_dir=str(common.resolve_data_dir(data_dir)),
                     file_format=file_format, **kwargs)

  @classmethod
  def locate(cls, manual_dir: str | os.PathLike | None,
             data_dir: str | os.PathLike | None) -> Any:
    """Finds the source files (downloading them where that is possible).

    Raises:
      DataNotFoundError: nothing usable was found; the message says which
        files to put where.
    """
    raise NotImplementedError

  def _features(self) -> tuple[dict[str, Any], tuple[str, str]]:
    """``(Tensor features by name, supervised keys)`` of one example."""
    raise NotImplementedError

  def _info(self) -> tfds.core.DatasetInfo:
    features, supervised_keys = self._features()
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=supervised_keys,
        homepage=self.HOMEPAGE,
        citation=self.CITATION,
        metadata=tfds.core.MetadataDict(),
        disable_shuffling=True,
    )

  def _locate_source(self, dl_manager) -> Any:
    """:meth:`locate` with TFDS's manual dir, if one was given."""
    try:
      manual_dir = dl_manager.manual_dir
    except (AssertionError, ValueError):  # Not set, missing or empty.
      manual_dir = None
    return self.locate(manual_dir, self.data_dir_root)


class ArrayImageBuilder(SnnBuilder, skip_registration=True):
  """Base builder: numpy image arrays -> ``array_record`` with Tensor features.

  Features of every example:
    ``image``: uint8 ``IMAGE_SHAPE`` (H, W, C), raw pixel values in
      ``0..PIXEL_MAX``;
    ``label``: int64 scalar in ``0..NUM_CLASSES - 1``;
    one int64 scalar per name in ``EXTRA_LABELS``.
  """

  IMAGE_SHAPE: tuple[int, int, int] = (0, 0, 0)
  EXTRA_LABELS: Mapping[str, int] = {}  # name -> number of classes

  # --------------------------------------------------------------- subclass API
  @classmethod
  def read_arrays(cls, source: Any) -> SplitArrays:
    """Parses the source into ``{split: {"image": [N,H,W,C] uint8, ...}}``."""
    raise NotImplementedError

  # ------------------------------------------------------------ TFDS overrides
  def _features(self):
    tensor = tfds.features.Tensor
    features = {
        "image": tensor(shape=self.IMAGE_SHAPE, dtype=np.uint8,
                        encoding=tfds.features.Encoding.BYTES),
        "label": tensor(shape=(), dtype=np.int64),
    }
    for name in self.EXTRA_LABELS:
      features[name] = tensor(shape=(), dtype=np.int64)
    return features, ("image", "label")

  def _split_generators(self, dl_manager):
    source = self._locate_source(dl_manager)
    arrays = self.read_arrays(source)
    for split in self.SPLITS:
      self._validate(arrays[split], split, source)
    mean, std = channel_stats(arrays["train"]["image"], self.PIXEL_MAX)
    self.info.metadata["mean"] = [float(m) for m in mean]
    self.info.metadata["std"] = [float(s) for s in std]
    return {split: self._generate_examples(arrays[split])
            for split in self.SPLITS}

  def _generate_examples(self, arrays: Mapping[str, np.ndarray]
                         ) -> Iterator[tuple[int, dict[str, Any]]]:
    names = list(arrays)
    for i in range(len(arrays["label"])):
      yield i, {k: arrays[k][i] for k in names}

  # ----------------------------------------------------------------- helpers
  def _validate(self, arrays: Mapping[str, np.ndarray], split: str,
                source: Any) -> None:
    """Raises ValueError naming the source when arrays look corrupt."""
    images = arrays["image"]
    where = f"{self.name} {split} split read from {source}"
    if images.dtype != np.uint8 or images.shape[1:] != self.IMAGE_SHAPE:
      raise ValueError(
          f"{where}: images are {images.dtype}{list(images.shape)}, expected "
          f"uint8[N, {', '.join(map(str, self.IMAGE_SHAPE))}]. The source "
          "file is corrupt or not the official one.")
    if images.size and int(images.max()) > self.PIXEL_MAX:
      raise ValueError(f"{where}: pixel value {int(images.max())} > "
                       f"{self.PIXEL_MAX}.")
    classes = {"label": self.NUM_CLASSES, **self.EXTRA_LABELS}
    for key, num in classes.items():
      y = arrays[key]
      if y.shape != (len(images),):
        raise ValueError(f"{where}: {len(images)} images but {key} has shape "
                         f"{list(y.shape)}.")
      if y.size and (int(y.min()) < 0 or int(y.max()) >= num):
        raise ValueError(f"{where}: {key} outside 0..{num - 1}.")


def channel_stats(images: np.ndarray, pixel_max: float
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std of ``images / pixel_max``.

  Args:
    images: ``[N, H, W, C]`` raw pixel values.
    pixel_max: the raw value that maps to 1.0.

  Returns:
    ``(mean, std)``, each float64 ``[C]``: the population statistics over all
    pixels of all images (not an average of per-image statistics).
  """
  x = images.reshape(-1, images.shape[-1])
  total = np.zeros(x.shape[-1])
  total_sq = np.zeros(x.shape[-1])
  for start in range(0, len(x), 1 << 20):  # Bounded float64 memory.
    chunk = x[start:start + (1 << 20)].astype(np.float64)
    total += chunk.sum(0)
    total_sq += np.square(chunk).sum(0)
  n = max(len(x), 1)
  mean = total / n
  var = np.maximum(total_sq / n - np.square(mean), 0.0)
  return mean / pixel_max, np.sqrt(var) / pixel_max
