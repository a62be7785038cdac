"""``snn_dvs_gesture``: IBM's DVS128 Gesture, 11 hand and arm gestures.

**Source.** Extract the official ``DvsGesture.tar.gz`` (Amir et al. 2017)
into ``manual_dir`` (or ``<data_dir>/downloads/manual``)::

  manual_dir/DvsGesture/trials_to_train.txt  (a userXX_<lighting>.aedat a line)
  manual_dir/DvsGesture/trials_to_test.txt
  manual_dir/DvsGesture/user01_fluorescent.aedat         (AEDAT 3.1)
  manual_dir/DvsGesture/user01_fluorescent_labels.csv
  ...

Each labels file is ``class,startTime_usec,endTime_usec`` lines.

(the files may also sit directly in ``manual_dir``). Every labelled segment
of a listed recording is one example: the events with ``start <= t < end``,
label = class - 1 (0..10). Splits keep the order of the trials files and,
within a recording, of its labels file: 1,176 train and 288 test examples.

**Frames.** ``events.read_aedat3``, the segment, then ``events_to_frames(
..., (128, 128), n_frames=16, split_by="number")`` (SpikingJelly's usual
DVS128 Gesture setting), downsampled to 32x32 by summing 4x4 pixel blocks
(``framing.sum_pool_frames``; the same as binning events at ``x // 4, y //
4``) so that a CPU can train on it. Stored as uint16 ``[16, 32, 32, 2]``
counts (clipped at 65,535), zlib-compressed.
"""

from __future__ import annotations

import pathlib

import numpy as np

from snn_sparse.data import events as events_lib
from snn_sparse.data import framing
from snn_sparse.data.builders import common
from snn_sparse.data.builders import event_base

#: The DVS128 sensor, ``(width, height)``.
SENSOR = (128, 128)
#: Frames per example.
N_FRAMES = 16
#: Spatial downsampling factor: 128x128 -> 32x32.
POOL = 4
#: Split name -> file listing its recordings.
TRIALS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
HOMEPAGE = "https://research.ibm.com/interactive/dvsgesture/"

LAYOUT = """\
  <manual_dir>/DvsGesture/trials_to_train.txt
  <manual_dir>/DvsGesture/trials_to_test.txt
  <manual_dir>/DvsGesture/userXX_<lighting>.aedat
  <manual_dir>/DvsGesture/userXX_<lighting>_labels.csv
(DvsGesture.tar.gz extracted; the files may also sit in <manual_dir> itself)"""


def labels_path(aedat: pathlib.Path) -> pathlib.Path:
  """``userXX_<lighting>.aedat`` -> ``userXX_<lighting>_labels.csv``."""
  return aedat.with_name(aedat.stem + "_labels.csv")


def _trials(d: pathlib.Path) -> dict[str, list[pathlib.Path]] | None:
  """The recordings listed by both trials files in ``d``, or None."""
  if not all((d / name).is_file() for name in TRIALS.values()):
    return None
  out = {}
  for split, name in TRIALS.items():
    lines = (d / name).read_text().split()
    out[split] = [d / line for line in lines if line.endswith(".aedat")]
  return out


class SnnDvsGesture(event_base.EventFramesBuilder):
  """DVS128 Gesture: 11 classes, uint16 ``[16, 32, 32, 2]``, 1,176/288."""

  name = "snn_dvs_gesture"
  FRAMES_SHAPE = (N_FRAMES, SENSOR[1] // POOL, SENSOR[0] // POOL, 2)
  FRAME_DTYPE = np.uint16
  NUM_CLASSES = 11
  NUM_TRAIN = 1176
  NUM_TEST = 288
  FRAMING = {"sensor": list(SENSOR), "n_frames": N_FRAMES,
             "split_by": "number", "downsample": f"sum of {POOL}x{POOL} "
             "pixel blocks"}
  DESCRIPTION = (
      "DVS128 Gesture: 11 hand and arm gestures of 29 subjects under 3 "
      "lighting conditions, one example per labelled segment, framed into "
      "16 per-polarity count frames (equal event counts) at 32x32.")
  HOMEPAGE = HOMEPAGE
  CITATION = """@inproceedings{amir2017low,
  author = {Amir, Arnon and Taba, Brian and Berg, David and others},
  title = {A Low Power, Fully Event-Based Gesture Recognition System},
  booktitle = {CVPR},
  pages = {7243--7252},
  year = {2017}
}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Download DvsGesture.tar.gz from {HOMEPAGE} and extract it into "
      f"manual_dir:\n{LAYOUT}")

  @classmethod
  def locate(cls, manual_dir, data_dir) -> dict[str, list[pathlib.Path]]:
    """``{split: [recording, ...]}``; every recording and labels file exists."""
    dirs = common.search_dirs(manual_dir, data_dir)
    for d in dirs:
      for candidate in (d / "DvsGesture", d):
        trials = _trials(candidate)
        if trials is None:
          continue
        missing = [str(p) for files in trials.values() for f in files
                   for p in (f, labels_path(f)) if not p.is_file()]
        if missing:
          raise common.DataNotFoundError(
              f"DVS128 Gesture in {candidate} is incomplete: "
              f"{len(missing)} listed files are missing, e.g. "
              f"{', '.join(missing[:3])}. Expected layout:\n{LAYOUT}")
        return trials
    looked = "\n".join(f"  {d}" for d in dirs)
    raise common.DataNotFoundError(
        f"DVS128 Gesture source not found. Download DvsGesture.tar.gz from "
        f"{HOMEPAGE} and extract it into {dirs[0]} (or pass manual_dir=DIR) "
        f"as\n{LAYOUT}\nLooked in:\n{looked}")

  @classmethod
  def list_examples(cls, source) -> dict[str, list[tuple[str, int, int,
                                                         int]]]:
    """``(recording, label, start, end)`` per labelled segment."""
    out = {}
    for split, files in source.items():
      out[split] = [(str(f), int(s["label"]), int(s["start"]), int(s["end"]))
                    for f in files
                    for s in events_lib.read_gesture_labels(labels_path(f))]
    return out

  @classmethod
  def make_example(cls, record) -> tuple[np.ndarray, int]:
    """Frames one labelled segment (recordings are decoded once each)."""
    path, label, start, end = record
    events = events_lib.segment(_recording(path), start, end)
    frames = framing.events_to_frames(events, SENSOR, N_FRAMES,
                                      split_by="number", dtype=np.int64)
    return framing.sum_pool_frames(frames, POOL), label


_LAST: dict[str, np.ndarray] = {}


def _recording(path: str) -> np.ndarray:
  """The events of ``path``; the last recording read is kept."""
  if path not in _LAST:
    _LAST.clear()
    _LAST[path] = events_lib.read_aedat3(path)
  return _LAST[path]
