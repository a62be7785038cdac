"""The TFDS builder base class of the event-frame datasets of snn_sparse.

A concrete builder supplies three class methods:

* ``locate(manual_dir, data_dir)`` finds the source files and raises
  :class:`~snn_sparse.data.builders.common.DataNotFoundError`, naming the
  expected layout, when it cannot;
* ``list_examples(source)`` lists, per split, one small record per example
  (for example a file name and a label), in the order the split keeps;
* ``make_example(record)`` reads and frames one example: ``(frames
  [T, H, W, 2], label)``.

Examples are framed one at a time while they are written, so a build never
holds a whole dataset in memory. Each example is stored as ``array_record``
with ``Tensor`` features only:

* ``frames``: ``FRAMES_SHAPE`` ``(T, H, W, 2)`` of ``FRAME_DTYPE``,
  zlib-compressed (event frames are mostly zeros). Integer counts are
  clipped to the dtype's maximum, float16 values to 65504;
* ``label``: int64 scalar in ``0..NUM_CLASSES - 1``.

The framing parameters are recorded in the dataset's metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from snn_sparse.data.builders import base


def to_storage(frames: np.ndarray, dtype) -> np.ndarray:
  """Casts frames to ``dtype``, clipping to its range (counts are >= 0)."""
  dtype = np.dtype(dtype)
  if np.issubdtype(dtype, np.integer):
    top = np.iinfo(dtype).max
    if np.issubdtype(frames.dtype, np.floating):
      frames = np.rint(frames)
  else:
    top = np.finfo(dtype).max
  return np.clip(frames, 0, top).astype(dtype)


class EventFramesBuilder(base.SnnBuilder, skip_registration=True):
  """Base builder: per-example event frames -> ``array_record``."""

  FRAMES_SHAPE: tuple[int, int, int, int] = (0, 0, 0, 2)
  FRAME_DTYPE: Any = np.uint8
  #: Frames are fed as the stored per-polarity counts, not normalised.
  MEAN = (0.0, 0.0)
  STD = (1.0, 1.0)
  PIXEL_MAX = 1
  #: Framing parameters recorded in the metadata (documentation only).
  FRAMING: Mapping[str, Any] = {}

  # --------------------------------------------------------------- subclass API
  @classmethod
  def list_examples(cls, source: Any) -> Mapping[str, Sequence[Any]]:
    """``{split: [record, ...]}``, one record per example, in stored order."""
    raise NotImplementedError

  @classmethod
  def make_example(cls, record: Any) -> tuple[np.ndarray, int]:
    """Reads and frames one example: ``(frames FRAMES_SHAPE, label)``."""
    raise NotImplementedError

  # ------------------------------------------------------------ TFDS overrides
  def _features(self):
    tensor = tfds.features.Tensor
    features = {
        "frames": tensor(shape=self.FRAMES_SHAPE, dtype=self.FRAME_DTYPE,
                         encoding=tfds.features.Encoding.ZLIB),
        "label": tensor(shape=(), dtype=np.int64),
    }
    return features, ("frames", "label")

  def _split_generators(self, dl_manager):
    source = self._locate_source(dl_manager)
    records = self.list_examples(source)
    self.info.metadata["framing"] = dict(self.FRAMING)
    return {split: self._generate_examples(records[split])
            for split in self.SPLITS}

  def _generate_examples(self, records: Sequence[Any]
                         ) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, record in enumerate(records):
      frames, label = self.make_example(record)
      if frames.shape != self.FRAMES_SHAPE:
        raise ValueError(f"{self.name}: {record} gave frames of shape "
                         f"{list(frames.shape)}, expected "
                         f"{list(self.FRAMES_SHAPE)}.")
      if not 0 <= int(label) < self.NUM_CLASSES:
        raise ValueError(f"{self.name}: {record} has label {label}, outside "
                         f"0..{self.NUM_CLASSES - 1}.")
      yield i, {"frames": to_storage(frames, self.FRAME_DTYPE),
                "label": np.int64(label)}
