"""``snn_nmnist``: N-MNIST, MNIST recorded by a moving event camera.

**Source.** The official release (Orchard et al. 2015) is ``Train.zip`` and
``Test.zip``. Put them, or their extracted folders, into ``manual_dir`` (or
``<data_dir>/downloads/manual``)::

  manual_dir/Train/0/00002.bin ... manual_dir/Train/9/*.bin   (60,000 files)
  manual_dir/Test/0/*.bin ... manual_dir/Test/9/*.bin         (10,000 files)
  or
  manual_dir/Train.zip and manual_dir/Test.zip (holding Train/<digit>/*.bin
  and Test/<digit>/*.bin)

The digit folder is the label. Each split is stored sorted by (digit, file
name).

**Frames.** ``events.read_nmnist`` (34x34 sensor), then ``events_to_frames(
..., n_frames=10, split_by="number")``. Stored as uint8 ``[10, 34, 34, 2]``
counts (clipped at 255; a 300 ms recording of about 4,000 events stays far
below), zlib-compressed.
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

#: Frames per example.
N_FRAMES = 10
#: Split name -> folder (and zip archive stem) of the official release.
FOLDERS = {"train": "Train", "test": "Test"}
HOMEPAGE = "https://www.garrickorchard.com/datasets/n-mnist"

LAYOUT = """\
  <manual_dir>/Train/<digit>/*.bin  (digit folders 0..9)
  <manual_dir>/Test/<digit>/*.bin
or the official archives <manual_dir>/Train.zip and <manual_dir>/Test.zip"""

_MEMBER = re.compile(r"(?:^|/)(Train|Test)/([0-9])/[^/]+\.bin$")


def _split_files(d: pathlib.Path, folder: str
                 ) -> list[tuple[archive.Member, int]] | None:
  """``[(file, digit)]`` of one split in ``d``, sorted; None if absent."""
  top = d / folder
  if top.is_dir():
    found = [(archive.Member(str(p)), int(p.parent.name), p.name)
             for p in top.glob("[0-9]/*.bin") if not archive.is_hidden(p.name)]
  elif (d / f"{folder}.zip").is_file():
    path = str(d / f"{folder}.zip")
    found = []
    for name in archive.zip_names(path):
      match = _MEMBER.search(name)
      if match and match.group(1) == folder:
        found.append((archive.Member(path, name), int(match.group(2)),
                      name.rsplit("/", 1)[-1]))
  else:
    return None
  found.sort(key=lambda item: (item[1], item[2]))
  return [(file, digit) for file, digit, _ in found] or None


class SnnNmnist(event_base.EventFramesBuilder):
  """N-MNIST: 10 classes, uint8 ``[10, 34, 34, 2]``, 60,000/10,000."""

  name = "snn_nmnist"
  FRAMES_SHAPE = (N_FRAMES, 34, 34, 2)
  FRAME_DTYPE = np.uint8
  NUM_CLASSES = 10
  NUM_TRAIN = 60000
  NUM_TEST = 10000
  FRAMING = {"sensor": list(events_lib.NMNIST_SENSOR), "n_frames": N_FRAMES,
             "split_by": "number"}
  DESCRIPTION = (
      "N-MNIST: the MNIST digits recorded by an ATIS event camera moving in "
      "three saccades; 34x34 sensor, framed into 10 per-polarity count "
      "frames with equal event counts.")
  HOMEPAGE = HOMEPAGE
  CITATION = """@article{orchard2015converting,
  author = {Orchard, Garrick and Jayawant, Ajinkya and Cohen, Gregory K. and
            Thakor, Nitish},
  title = {Converting Static Image Datasets to Spiking Neuromorphic Datasets
           Using Saccades},
  journal = {Frontiers in Neuroscience},
  volume = {9},
  pages = {437},
  year = {2015}
}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Download Train.zip and Test.zip from {HOMEPAGE} and put them (or "
      f"their extracted folders) into manual_dir:\n{LAYOUT}")

  @classmethod
  def locate(cls, manual_dir, data_dir) -> dict[str, list]:
    """``{split: [(file, digit), ...]}`` from the first dir holding both."""
    dirs = common.search_dirs(manual_dir, data_dir)
    for d in dirs:
      found = {split: _split_files(d, folder)
               for split, folder in FOLDERS.items()}
      if all(found.values()):
        return found
    looked = "\n".join(f"  {d}" for d in dirs)
    raise common.DataNotFoundError(
        f"N-MNIST source not found. Download it from {HOMEPAGE} and put it "
        f"into {dirs[0]} (or pass manual_dir=DIR) as\n{LAYOUT}\n"
        f"Looked in:\n{looked}")

  @classmethod
  def list_examples(cls, source) -> dict[str, list]:
    """The located files, already sorted per split."""
    return source

  @classmethod
  def make_example(cls, record) -> tuple[np.ndarray, int]:
    """Reads and frames one recording."""
    file, digit = record
    events = events_lib.decode_nmnist(archive.read_member(file), str(file))
    frames = framing.events_to_frames(events, events_lib.NMNIST_SENSOR,
                                      N_FRAMES, split_by="number",
                                      dtype=np.int64)
    return frames, digit
