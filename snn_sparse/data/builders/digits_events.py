"""``snn_digits_events``: scikit-learn's digits as emulated event streams.

An offline neuromorphic dataset: every one of the 1,797 real 8x8 digits of
:mod:`.digits` (same split: 1,437 train, 360 test) is turned into events
and framed, so event pipelines and recipes run anywhere without downloads.

1. The digit (pixels / 16, in ``[0, 1]``) is upsampled to 16x16 with
   bilinear interpolation (``align_corners=False``), so a conv net has
   edges to see.
2. ``snn_sparse.data.saccades.saccade_events`` emulates an event camera
   looking at it along three N-MNIST-style saccades (triangle of side 2
   pixels, 8 steps per saccade, 100 ms per saccade, contrast threshold 0.2
   on ``log(I + 0.1)``, 5% per-pixel threshold mismatch seeded by
   ``[0, index into load_digits()]``): about 1,700 events per digit on a
   16x16 sensor, 300 ms long.
3. ``events_to_frames(..., n_frames=6, split_by="number")``.

Frames are uint8 ``[6, 16, 16, 2]`` counts (never above 255 here). The
build is deterministic and takes a few seconds.
"""

from __future__ import annotations

import numpy as np

from snn_sparse.data import framing
from snn_sparse.data import saccades
from snn_sparse.data.builders import digits
from snn_sparse.data.builders import event_base

#: Frames per example.
N_FRAMES = 6
#: Side of the upsampled image and of the emulated sensor.
SIZE = 16
#: Emulation seed.
SEED = 0


class SnnDigitsEvents(event_base.EventFramesBuilder):
  """Emulated digit events: 10 classes, uint8 ``[6, 16, 16, 2]``."""

  name = "snn_digits_events"
  FRAMES_SHAPE = (N_FRAMES, SIZE, SIZE, 2)
  FRAME_DTYPE = np.uint8
  NUM_CLASSES = digits.SnnDigits.NUM_CLASSES
  NUM_TRAIN = digits.SnnDigits.NUM_TRAIN
  NUM_TEST = digits.SnnDigits.NUM_TEST
  FRAMING = {"emulation": "saccades", "upsample": f"bilinear {SIZE}x{SIZE}",
             "n_frames": N_FRAMES, "split_by": "number", "seed": SEED}
  DESCRIPTION = (
      "scikit-learn's 1,797 8x8 digits, upsampled to 16x16 and converted to "
      "events by an emulated event camera moving along three saccades; "
      "framed into 6 per-polarity count frames. Split as snn_digits.")
  HOMEPAGE = digits.SnnDigits.HOMEPAGE
  CITATION = digits.SnnDigits.CITATION

  @classmethod
  def locate(cls, manual_dir, data_dir) -> None:
    """Nothing to locate: the data ships with scikit-learn."""
    del manual_dir, data_dir

  @classmethod
  def list_examples(cls, source) -> dict[str, list[int]]:
    """Indices into ``load_digits()``, split as :mod:`.digits`."""
    del source
    train, test = digits.split_indices()
    return {"train": [int(i) for i in train], "test": [int(i) for i in test]}

  @classmethod
  def make_example(cls, record: int) -> tuple[np.ndarray, int]:
    """Emulates and frames digit ``record`` of ``load_digits()``."""
    images, labels = _digits()
    events = saccades.saccade_events(images[record], index=record, seed=SEED)
    frames = framing.events_to_frames(events, (SIZE, SIZE), N_FRAMES,
                                      split_by="number", dtype=np.int64)
    return frames, int(labels[record])


_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _digits() -> tuple[np.ndarray, np.ndarray]:
  """The upsampled digits ``[1797, 16, 16]`` in ``[0, 1]`` and labels."""
  if "digits" not in _CACHE:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    data = datasets.load_digits()
    pixels = data.images[..., None] / float(digits.SnnDigits.PIXEL_MAX)
    images = framing.resize_frames(pixels, (SIZE, SIZE), "bilinear")[..., 0]
    _CACHE["digits"] = (images, data.target)
  return _CACHE["digits"]
