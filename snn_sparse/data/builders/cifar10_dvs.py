"""``snn_cifar10_dvs``: CIFAR10-DVS, 10,000 event recordings in 10 classes.

**Source.** The official release (Li et al. 2017, figshare) is ten zip
archives, one per class, each unpacking into a folder of 1,000 AEDAT 2.0
recordings. Put either the archives or the extracted folders into
``manual_dir`` (or ``<data_dir>/downloads/manual``)::

  manual_dir/
    airplane/cifar10_airplane_0.aedat ... cifar10_airplane_999.aedat
    automobile/cifar10_automobile_0.aedat ...
    bird/ cat/ deer/ dog/ frog/ horse/ ship/ truck/
  or
  manual_dir/airplane.zip automobile.zip ... truck.zip

A zip may hold its recordings at any depth; every ``*.aedat`` file in a
class counts (hidden files such as macOS's ``._*`` and ``__MACOSX/`` are
skipped). Labels follow the order above (airplane 0 ... truck 9).

**Split.** Per class, recordings are sorted by the number in the file name
(``cifar10_airplane_7.aedat`` is 7; not lexicographic order); the first
``floor(9 n / 10)`` of its ``n`` recordings (900 of 1,000) go to the train
split and the rest (100) to the test split: 9,000 / 1,000, the standard 9:1
split. Splits are stored class by class in that order.

**Frames.** ``events.read_aedat2`` decodes the DVS128 addresses; the
builder then applies the orientation of the literature's loaders
(SpikingJelly, TET): ``x' = 127 - y``, ``y' = 127 - x``, ``p' = 1 - p``.
``events_to_frames(..., (128, 128), n_frames=10, split_by="number")`` gives
``[10, 128, 128, 2]`` counts, resized to 48x48 with
``framing.resize_frames(..., method="bilinear")``, which equals PyTorch's
``F.interpolate(size=48, mode="bilinear", align_corners=False)``, the
common VGGSNN/TET recipe. Stored as float16 ``[10, 48, 48, 2]`` (relative
rounding error below 5e-4), zlib-compressed.
"""

from __future__ import annotations

import pathlib
import re

import numpy as np

from snn_sparse.data import events as events_lib
from snn_sparse.data import framing
from snn_sparse.data.builders import archive
from snn_sparse.data.builders import common
from snn_sparse.data.builders import event_base

#: Class names, index = label (the order of CIFAR-10).
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
           "horse", "ship", "truck")
#: Recordings per class in the official release.
RECORDINGS_PER_CLASS = 1000
#: The DVS128 sensor, ``(width, height)``.
SENSOR = (128, 128)
#: Frames per example.
N_FRAMES = 10
#: Stored frame size ``(height, width)``.
SIZE = (48, 48)
HOMEPAGE = "https://doi.org/10.6084/m9.figshare.4724671"

_NUMBER = re.compile(r"(\d+)\.aedat$")

LAYOUT = """\
  <manual_dir>/airplane/cifar10_airplane_0.aedat ... cifar10_airplane_999.aedat
  <manual_dir>/automobile/cifar10_automobile_0.aedat ...
  ... one folder per class: """ + ", ".join(CLASSES) + """
or the ten official archives <manual_dir>/airplane.zip ... truck.zip"""


def train_count(n: int) -> int:
  """Recordings of a class that go to the train split: ``9 n // 10``."""
  return (9 * n) // 10


def _number(name: str) -> int:
  match = _NUMBER.search(name)
  if match is None:
    raise ValueError(f"{name}: a CIFAR10-DVS recording must be named "
                     "cifar10_<class>_<number>.aedat.")
  return int(match.group(1))


def _class_files(d: pathlib.Path, name: str) -> list[archive.Member] | None:
  """The recordings of class ``name`` in ``d`` (folder first), or None."""
  folder = d / name
  if folder.is_dir():
    files = [archive.Member(str(p)) for p in folder.glob("*.aedat")
             if not archive.is_hidden(p.name)]
  elif (d / f"{name}.zip").is_file():
    path = str(d / f"{name}.zip")
    files = [archive.Member(path, m) for m in archive.zip_names(path)
             if m.endswith(".aedat")]
  else:
    return None
  names = [f.member or f.path for f in files]
  order = sorted(range(len(files)),
                 key=lambda i: (_number(names[i]), names[i]))
  return [files[i] for i in order]


def oriented(events: np.ndarray) -> np.ndarray:
  """The CIFAR10-DVS orientation of events ``[N]`` (see the module doc).

  ``x' = 127 - y``, ``y' = 127 - x``, ``p' = 1 - p``, as SpikingJelly's and
  TET's loaders, so frames match published pipelines.
  """
  return events_lib.make_events(events["t"], 127 - events["y"],
                                127 - events["x"], 1 - events["p"])


def frames_of(events: np.ndarray) -> np.ndarray:
  """Oriented events -> float32 ``[10, 48, 48, 2]`` (see the module doc)."""
  counts = framing.events_to_frames(events, SENSOR, N_FRAMES,
                                    split_by="number")
  return framing.resize_frames(counts, SIZE, "bilinear")


class SnnCifar10Dvs(event_base.EventFramesBuilder):
  """CIFAR10-DVS: 10 classes, float16 ``[10, 48, 48, 2]``, 9,000/1,000."""

  name = "snn_cifar10_dvs"
  FRAMES_SHAPE = (N_FRAMES, *SIZE, 2)
  FRAME_DTYPE = np.float16
  NUM_CLASSES = len(CLASSES)
  NUM_TRAIN = NUM_CLASSES * train_count(RECORDINGS_PER_CLASS)
  NUM_TEST = NUM_CLASSES * RECORDINGS_PER_CLASS - NUM_TRAIN
  #: The common VGGSNN/TET augmentation: random flip and circular roll.
  FLIP = True
  ROLL = 5
  FRAMING = {"sensor": list(SENSOR), "n_frames": N_FRAMES,
             "split_by": "number", "orientation": "x'=127-y, y'=127-x, "
             "p'=1-p", "resize": "bilinear 48x48 (align_corners=False)"}
  DESCRIPTION = (
      "CIFAR10-DVS: 10,000 DVS128 recordings of CIFAR-10 images in 10 "
      "classes, framed into 10 per-polarity count frames (equal event "
      "counts) resized to 48x48. Per-class 9:1 split by recording number.")
  HOMEPAGE = HOMEPAGE
  CITATION = """@article{li2017cifar10dvs,
  author = {Li, Hongmin and Liu, Hanchao and Ji, Xiangyang and Li, Guoqi and
            Shi, Luping},
  title = {{CIFAR10-DVS}: An Event-Stream Dataset for Object Classification},
  journal = {Frontiers in Neuroscience},
  volume = {11},
  pages = {309},
  year = {2017}
}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Download the ten class archives from {HOMEPAGE} and put them (or "
      f"their extracted folders) into manual_dir:\n{LAYOUT}")

  @classmethod
  def locate(cls, manual_dir, data_dir) -> list[list[archive.Member]]:
    """The sorted recordings of each class, from the first complete dir."""
    dirs = common.search_dirs(manual_dir, data_dir)
    missing_in = {}
    for d in dirs:
      found = [_class_files(d, name) for name in CLASSES]
      if all(f for f in found):
        return found
      missing_in[d] = [n for n, f in zip(CLASSES, found) if not f]
    looked = "\n".join(f"  {d} (missing: {', '.join(m)})"
                       for d, m in missing_in.items())
    raise common.DataNotFoundError(
        f"CIFAR10-DVS source not found. Download it from {HOMEPAGE} and put "
        f"it into {dirs[0]} (or pass manual_dir=DIR) as\n{LAYOUT}\n"
        f"Looked in:\n{looked}")

  @classmethod
  def list_examples(cls, source) -> dict[str, list[tuple[archive.Member,
                                                         int]]]:
    """Per class, the first ``train_count(n)`` recordings train, rest test."""
    out = {"train": [], "test": []}
    for label, files in enumerate(source):
      k = train_count(len(files))
      out["train"] += [(f, label) for f in files[:k]]
      out["test"] += [(f, label) for f in files[k:]]
    return out

  @classmethod
  def make_example(cls, record) -> tuple[np.ndarray, int]:
    """Reads, orients, frames and resizes one recording."""
    file, label = record
    events = events_lib.decode_aedat2(archive.read_member(file), str(file))
    return frames_of(oriented(events)), label
