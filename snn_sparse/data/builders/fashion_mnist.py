"""``snn_fashion_mnist``: Zalando's Fashion-MNIST, 70,000 28x28 grey images.

Sources, first found wins:

1. ``manual_dir`` (when given) holding the four official IDX files;
2. ``<data_dir>/downloads/manual`` holding them (downloads also land here);
3. ``/usr/share/datasets/fashion-mnist``, installed by the Debian package
   ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``);
4. a download from the official mirror, tried only once and failing fast
   (a few seconds) where there is no network.

The four files are ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped
(``.gz``) or not. Images are stored as uint8 ``[28, 28, 1]`` in ``0..255``.
"""

from __future__ import annotations

import gzip
import os
import pathlib

import numpy as np

from snn_sparse.data.builders import base
from snn_sparse.data.builders import common

#: Directories of system packages that ship the files (Debian and derivatives).
SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets/fashion-mnist",)
#: Official mirror of the four gzipped IDX files.
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: (split, feature) -> file name without the ``.gz`` suffix.
FILES = {
    ("train", "image"): "train-images-idx3-ubyte",
    ("train", "label"): "train-labels-idx1-ubyte",
    ("test", "image"): "t10k-images-idx3-ubyte",
    ("test", "label"): "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (``.gz`` or raw) of unsigned bytes into a uint8 array.

  The header is two zero bytes, a type byte (``0x08`` = ubyte), the number
  of dimensions ``d``, then ``d`` big-endian int32 sizes.

  Raises:
    ValueError: the file is not a complete ubyte IDX file.
  """
  path = pathlib.Path(path)
  opener = gzip.open if path.suffix == ".gz" else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError) as e:
    raise ValueError(f"cannot read IDX file {path}: {e}") from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
    raise ValueError(f"{path} is not a ubyte IDX file (bad magic number).")
  ndim = raw[3]
  header = 4 + 4 * ndim
  shape = tuple(int(s) for s in np.frombuffer(raw, ">i4", ndim, offset=4))
  if len(raw) != header + int(np.prod(shape)):
    raise ValueError(f"{path}: IDX header says shape {list(shape)}, but the "
                     f"file has {len(raw) - header} data bytes (truncated?).")
  return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _complete_dir(d: pathlib.Path) -> dict[str, pathlib.Path] | None:
  """The four files in ``d`` (``.gz`` preferred), or None if any is missing."""
  found = {}
  for stem in FILES.values():
    p = common.find_file([d], [stem + ".gz", stem])
    if p is None:
      return None
    found[stem] = p
  return found


def missing_message(dirs, reason: str) -> str:
  """The error text for missing Fashion-MNIST files."""
  names = ", ".join(s + ".gz" for s in FILES.values())
  looked = "\n".join(f"  {d}" for d in dirs)
  return (
      "Fashion-MNIST source files not found. Either install the Debian "
      "package (`apt-get install dataset-fashion-mnist`, which puts them in "
      f"{SYSTEM_DIRS[0]}), or put the four official files {names} "
      f"(gzipped or not) into {dirs[0]} (or pass manual_dir=DIR holding "
      f"them). Looked in:\n{looked}\nDownload from {URL} failed: {reason}")


class SnnFashionMnist(base.ArrayImageBuilder):
  """Fashion-MNIST: 10 classes, uint8 ``[28, 28, 1]``, 60,000/10,000."""

  name = "snn_fashion_mnist"
  IMAGE_SHAPE = (28, 28, 1)
  NUM_CLASSES = 10
  NUM_TRAIN = 60000
  NUM_TEST = 10000
  MEAN = (0.28604060,)
  STD = (0.35302424,)
  DESCRIPTION = ("Fashion-MNIST: 28x28 grey images of Zalando articles in "
                 "10 classes; 60,000 train and 10,000 test images.")
  HOMEPAGE = "https://github.com/zalandoresearch/fashion-mnist"
  CITATION = """@article{xiao2017fashion,
  author = {Xiao, Han and Rasul, Kashif and Vollgraf, Roland},
  title = {Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
           Learning Algorithms},
  journal = {arXiv preprint arXiv:1708.07747},
  year = {2017}
}"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Install `dataset-fashion-mnist` (Debian) or put "
      + ", ".join(s + ".gz" for s in FILES.values()) + " into manual_dir.")

  @classmethod
  def locate(cls, manual_dir, data_dir) -> dict[str, pathlib.Path]:
    """Returns ``{file stem: path}`` for the four IDX files (see module doc)."""
    dirs = common.search_dirs(manual_dir, data_dir)
    system = [pathlib.Path(d) for d in SYSTEM_DIRS]
    for d in [*dirs, *system]:
      found = _complete_dir(d)
      if found is not None:
        return found
    target = common.default_manual_dir(data_dir)
    try:
      for stem in FILES.values():
        if common.find_file([target], [stem + ".gz", stem]) is None:
          common.download(URL + stem + ".gz", target / (stem + ".gz"))
    except common.DownloadError as e:
      raise common.DataNotFoundError(
          missing_message([*dirs, *system], str(e))) from None
    return _complete_dir(target)

  @classmethod
  def read_arrays(cls, source) -> base.SplitArrays:
    """Parses the IDX files into uint8 ``[N, 28, 28, 1]`` images and labels."""
    arrays: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
    for (split, key), stem in FILES.items():
      a = read_idx(source[stem])
      if key == "image":
        a = a[..., None]
      else:
        a = a.astype(np.int64)
      arrays[split][key] = a
    return arrays
