"""The dataset catalogue: static facts of every dataset, needing no data.

Each fact is stated once, by the dataset's builder class
(:mod:`snn_sparse.data.builders`); :func:`dataset_info` gathers them into a
:class:`DatasetInfo`, and :data:`DATASETS` lists one for every registered
builder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from snn_sparse.data import builders


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static facts about a dataset; needs no data on disk.

  Attributes:
    name: pipeline name, e.g. ``"cifar10"``.
    num_classes: number of labels.
    input_shape: ``(H, W, C)`` of one ``"input"`` image.
    num_train: size of the official train split.
    num_test: size of the official test split.
    mean: per-channel mean of ``pixel / pixel_max`` over the train split.
    std: per-channel std of ``pixel / pixel_max`` over the train split.
    pixel_max: the stored pixel value that maps to 1.0.
    crop_padding: default random-crop padding of ``augment=True`` (0: none).
    flip: default random horizontal flip of ``augment=True``.
    frames: ``T`` of an event dataset, whose examples are frames ``[T, H,
      W, 2]`` (``input_shape`` is ``(H, W, 2)``); 0 for static images.
    roll: default maximal random circular shift (pixels, each axis) of
      ``augment=True`` (0: none).
  """

  name: str
  num_classes: int
  input_shape: tuple[int, int, int]
  num_train: int
  num_test: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  pixel_max: int = 255
  crop_padding: int = 0
  flip: bool = False
  frames: int = 0
  roll: int = 0

  @property
  def example_shape(self) -> tuple[int, ...]:
    """Shape of one stored example: ``(T, H, W, C)`` or ``(H, W, C)``."""
    if self.frames:
      return (self.frames, *self.input_shape)
    return tuple(self.input_shape)

  @property
  def feature(self) -> str:
    """The stored feature holding the example: ``"frames"`` or ``"image"``."""
    return "frames" if self.frames else "image"


def canonical_name(name: str) -> str:
  """The registered name of ``name``: case, ``-``/``_`` and ``snn_`` ignored.

  Raises:
    ValueError: no such dataset; the message lists the valid names.
  """
  key = str(name).strip().lower().replace("-", "_")
  key = key.removeprefix("snn_")
  if key not in builders.BUILDERS:
    raise ValueError(f"Unknown dataset {name!r}; choose one of "
                     f"{sorted(builders.BUILDERS)}.")
  return key


def _from_builder(name: str, cls: type) -> DatasetInfo:
  """The :class:`DatasetInfo` that builder class ``cls`` declares.

  Args:
    name: the pipeline name to record.
    cls: an image builder (``IMAGE_SHAPE``) or an event-frame builder
      (``FRAMES_SHAPE``, ``(T, H, W, 2)``), with the facts of
      :class:`~snn_sparse.data.builders.base.SnnBuilder`.
  """
  if hasattr(cls, "FRAMES_SHAPE"):
    frames, *input_shape = cls.FRAMES_SHAPE
  else:
    frames, input_shape = 0, cls.IMAGE_SHAPE
  return DatasetInfo(
      name=name, num_classes=cls.NUM_CLASSES, input_shape=tuple(input_shape),
      num_train=cls.NUM_TRAIN, num_test=cls.NUM_TEST, mean=tuple(cls.MEAN),
      std=tuple(cls.STD), pixel_max=cls.PIXEL_MAX,
      crop_padding=cls.CROP_PADDING, flip=cls.FLIP, frames=frames,
      roll=cls.ROLL)


def dataset_info(name: str) -> DatasetInfo:
  """Static :class:`DatasetInfo` of dataset ``name`` (no data is read).

  Raises:
    ValueError: no such dataset; the message lists the valid names.
  """
  key = canonical_name(name)
  return _from_builder(key, builders.builder_class(key))


class _Catalogue(Mapping):
  """Registered name -> :class:`DatasetInfo`, read from the builders on use."""

  def __getitem__(self, name: str) -> DatasetInfo:
    if name not in builders.BUILDERS:
      raise KeyError(name)
    return dataset_info(name)

  def __iter__(self) -> Iterator[str]:
    return iter(builders.BUILDERS)

  def __len__(self) -> int:
    return len(builders.BUILDERS)

  def __repr__(self) -> str:
    return f"DATASETS({sorted(builders.BUILDERS)})"


#: Every dataset: registered name -> :class:`DatasetInfo`. A read-only
#: mapping over :data:`snn_sparse.data.builders.BUILDERS`; a builder module
#: is imported when its entry is first read.
DATASETS: Mapping[str, DatasetInfo] = _Catalogue()
