"""Readers shared by the CIFAR-10 and CIFAR-100 builders.

Both official formats are supported, as the tarball or already extracted:

* python: ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``, pickled
  dicts whose ``data`` is uint8 ``[N, 3072]``, each row the 1,024 red, then
  green, then blue values of a 32x32 image in row-major order (CHW);
* binary: ``cifar-10-binary.tar.gz`` / ``cifar-100-binary.tar.gz``, records of
  1 label byte (CIFAR-10) or 2 (coarse, fine; CIFAR-100) + 3,072 CHW bytes.

Images are returned as uint8 ``[N, 32, 32, 3]`` (HWC). The pickles are read
with an unpickler that only accepts plain containers and numpy arrays.
:class:`CifarBuilder` holds the facts both datasets share.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import pathlib
import pickle
import tarfile
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from snn_sparse.data.builders import base
from snn_sparse.data.builders import common

#: Where the official tarballs are published.
HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
CITATION = """@techreport{krizhevsky2009learning,
  author = {Krizhevsky, Alex},
  title = {Learning Multiple Layers of Features from Tiny Images},
  institution = {University of Toronto},
  year = {2009}
}"""
_URL_BASE = "https://www.cs.toronto.edu/~kriz/"
#: Shape ``(H, W, C)`` of one image, stored as a CHW row in both formats.
IMAGE_SHAPE = (32, 32, 3)
_PIXELS = math.prod(IMAGE_SHAPE)


class CifarBuilder(base.ArrayImageBuilder, skip_registration=True):
  """The facts CIFAR-10 and CIFAR-100 share.

  Image shape, split sizes, homepage and citation, and the standard training
  augmentation: a random crop of the zero-padded image and a random
  horizontal flip.
  """

  IMAGE_SHAPE = IMAGE_SHAPE
  NUM_TRAIN = 50000
  NUM_TEST = 10000
  CROP_PADDING = 4
  FLIP = True
  HOMEPAGE = HOMEPAGE
  CITATION = CITATION


@dataclasses.dataclass(frozen=True)
class CifarLayout:
  """File names of one CIFAR variant in both formats.

  Attributes:
    title: human name, e.g. ``"CIFAR-10"``.
    python_tar: python-format tarball name.
    binary_tar: binary-format tarball name.
    python_dir: top directory inside the python tarball.
    binary_dir: top directory inside the binary tarball.
    python_files: split -> member names (in order) in ``python_dir``.
    binary_files: split -> member names (in order) in ``binary_dir``.
    label_bytes: label bytes before each binary record (1 or 2).
  """

  title: str
  python_tar: str
  binary_tar: str
  python_dir: str
  binary_dir: str
  python_files: Mapping[str, Sequence[str]]
  binary_files: Mapping[str, Sequence[str]]
  label_bytes: int


CIFAR10 = CifarLayout(
    title="CIFAR-10",
    python_tar="cifar-10-python.tar.gz",
    binary_tar="cifar-10-binary.tar.gz",
    python_dir="cifar-10-batches-py",
    binary_dir="cifar-10-batches-bin",
    python_files={"train": [f"data_batch_{i}" for i in range(1, 6)],
                  "test": ["test_batch"]},
    binary_files={"train": [f"data_batch_{i}.bin" for i in range(1, 6)],
                  "test": ["test_batch.bin"]},
    label_bytes=1,
)

CIFAR100 = CifarLayout(
    title="CIFAR-100",
    python_tar="cifar-100-python.tar.gz",
    binary_tar="cifar-100-binary.tar.gz",
    python_dir="cifar-100-python",
    binary_dir="cifar-100-binary",
    python_files={"train": ["train"], "test": ["test"]},
    binary_files={"train": ["train.bin"], "test": ["test.bin"]},
    label_bytes=2,
)


@dataclasses.dataclass(frozen=True)
class CifarSource:
  """A located CIFAR source: a tarball or an extracted directory."""

  path: pathlib.Path
  fmt: str  # "python" or "binary"

  def __str__(self) -> str:
    return str(self.path)


def missing_message(layout: CifarLayout, dirs: Sequence[pathlib.Path],
                    reason: str) -> str:
  """The error text for a missing CIFAR tarball."""
  looked = "\n".join(f"  {d}" for d in dirs)
  return (
      f"{layout.title} source not found. Put {layout.python_tar} (or "
      f"{layout.binary_tar}) from {HOMEPAGE} into {dirs[0]} (or pass "
      f"manual_dir=DIR holding it). Looked in:\n{looked}\n"
      f"Download from {_URL_BASE}{layout.python_tar} failed: {reason}")


def locate(layout: CifarLayout, manual_dir: str | os.PathLike | None,
           data_dir: str | os.PathLike | None) -> CifarSource:
  """Finds a tarball or extracted dir (python format first), else downloads.

  Searched: ``manual_dir``, then ``<data_dir>/downloads/manual``. A download
  goes to the latter and is tried once, failing fast without a network.

  Raises:
    DataNotFoundError: nothing found and the download failed.
  """
  dirs = common.search_dirs(manual_dir, data_dir)
  for d in dirs:
    for name, fmt in ((layout.python_tar, "python"),
                      (layout.binary_tar, "binary"),
                      (layout.python_dir, "python"),
                      (layout.binary_dir, "binary")):
      if (d / name).exists():
        return CifarSource(d / name, fmt)
  target = common.default_manual_dir(data_dir) / layout.python_tar
  try:
    common.download(_URL_BASE + layout.python_tar, target)
  except common.DownloadError as e:
    raise common.DataNotFoundError(
        missing_message(layout, dirs, str(e))) from None
  return CifarSource(target, "python")


def _read_members(source: CifarSource, top: str,
                  names: Sequence[str]) -> dict[str, bytes]:
  """Reads ``top/name`` for each name from the tarball or directory."""
  if source.path.is_dir():
    return {n: (source.path / n).read_bytes() for n in names}
  wanted = {f"{top}/{n}": n for n in names}
  out = {}
  try:
    with tarfile.open(source.path, "r:*") as tar:
      for member in tar:
        key = member.name.removeprefix("./")
        if key in wanted and member.isfile():
          out[wanted[key]] = tar.extractfile(member).read()
  except (tarfile.TarError, OSError, EOFError) as e:
    raise ValueError(f"cannot read {source.path}: {e}") from e
  missing = [f"{top}/{n}" for n in names if n not in out]
  if missing:
    raise ValueError(f"{source.path} lacks {', '.join(missing)}; is it the "
                     "official tarball?")
  return out


class _ArrayUnpickler(pickle.Unpickler):
  """Unpickles plain containers and numpy arrays, and nothing else."""

  _ALLOWED = {
      ("numpy", "ndarray"), ("numpy", "dtype"),
      ("numpy.core.multiarray", "_reconstruct"),
      ("numpy._core.multiarray", "_reconstruct"),
      ("numpy.core.multiarray", "scalar"),
      ("numpy._core.multiarray", "scalar"),
      ("_codecs", "encode"),  # bytes in protocol-2 pickles written by py3.
  }

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict[str, object]:
  """Loads one python-format batch; keys are returned as ``str``."""
  try:
    obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"cannot unpickle {where}: {e}") from e
  if not isinstance(obj, dict):
    raise ValueError(f"{where} is not a pickled dict.")
  return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def chw_to_hwc(rows: np.ndarray) -> np.ndarray:
  """uint8 ``[N, 3072]`` CHW rows -> uint8 ``[N, 32, 32, 3]`` images."""
  height, width, channels = IMAGE_SHAPE
  rows = np.asarray(rows, np.uint8).reshape(-1, channels, height, width)
  return np.ascontiguousarray(rows.transpose(0, 2, 3, 1))


def read_python(layout: CifarLayout, source: CifarSource,
                label_keys: Mapping[str, str]
                ) -> dict[str, dict[str, np.ndarray]]:
  """Reads the python format.

  Args:
    layout: CIFAR10 or CIFAR100.
    source: the tarball or extracted directory.
    label_keys: output feature -> pickle key, e.g. ``{"label": "labels"}``.

  Returns:
    ``{split: {"image": uint8 [N, 32, 32, 3], <feature>: int64 [N], ...}}``.
  """
  out = {}
  for split, names in layout.python_files.items():
    members = _read_members(source, layout.python_dir, names)
    images, labels = [], {k: [] for k in label_keys}
    for n in names:
      where = f"{source.path}:{layout.python_dir}/{n}"
      batch = _unpickle(members[n], where)
      if "data" not in batch or any(v not in batch
                                    for v in label_keys.values()):
        raise ValueError(f"{where} lacks 'data' or one of "
                         f"{sorted(label_keys.values())}.")
      data = np.asarray(batch["data"])
      if data.ndim != 2 or data.shape[1] != _PIXELS:
        raise ValueError(f"{where}: data has shape {list(data.shape)}, "
                         f"expected [N, {_PIXELS}].")
      images.append(chw_to_hwc(data))
      for feature, key in label_keys.items():
        labels[feature].append(np.asarray(batch[key], np.int64).reshape(-1))
    out[split] = {"image": np.concatenate(images)}
    out[split].update({k: np.concatenate(v) for k, v in labels.items()})
  return out


def read_binary(layout: CifarLayout, source: CifarSource,
                label_offsets: Mapping[str, int]
                ) -> dict[str, dict[str, np.ndarray]]:
  """Reads the binary format.

  Args:
    layout: CIFAR10 or CIFAR100.
    source: the tarball or extracted directory.
    label_offsets: output feature -> byte offset of its label in a record,
      e.g. ``{"label": 1, "coarse_label": 0}`` for CIFAR-100.

  Returns:
    ``{split: {"image": uint8 [N, 32, 32, 3], <feature>: int64 [N], ...}}``.
  """
  record = layout.label_bytes + _PIXELS
  out = {}
  for split, names in layout.binary_files.items():
    members = _read_members(source, layout.binary_dir, names)
    parts = []
    for n in names:
      raw = members[n]
      if len(raw) % record:
        raise ValueError(f"{source.path}:{layout.binary_dir}/{n} has "
                         f"{len(raw)} bytes, not a multiple of {record}.")
      parts.append(np.frombuffer(raw, np.uint8).reshape(-1, record))
    table = np.concatenate(parts)
    out[split] = {"image": chw_to_hwc(table[:, layout.label_bytes:])}
    for feature, offset in label_offsets.items():
      out[split][feature] = table[:, offset].astype(np.int64)
  return out
