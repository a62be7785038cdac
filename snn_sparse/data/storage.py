"""The built datasets on disk: building them once, and opening their splits.

A dataset is built by its TFDS builder into ``<data_dir>/snn_<name>/1.0.0``
(``data_dir`` defaults to ``$SNN_SPARSE_DATA_DIR`` or
``~/tensorflow_datasets``) and reused afterwards. Missing source files raise
:class:`~snn_sparse.data.builders.common.DataNotFoundError`, whose message
(written by the builder) says which files to put where.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import warnings
from typing import Any

import numpy as np

from snn_sparse.data import builders
from snn_sparse.data import catalog
from snn_sparse.data.builders import common

_SPLITS = ("train", "test")  # The stored TFDS splits.
_LOCK = threading.Lock()
_SOURCES: dict[tuple[str, str], dict[str, Any]] = {}


def prepare(name: str, *, data_dir: str | os.PathLike | None = None,
            manual_dir: str | os.PathLike | None = None):
  """Builds dataset ``name`` into ``data_dir`` unless already built.

  The build happens once per data dir (``<data_dir>/snn_<name>/1.0.0``) and
  is reused afterwards; ``manual_dir`` only matters for the first build.

  Args:
    name: pipeline dataset name (see :data:`~snn_sparse.data.catalog.DATASETS`).
    data_dir: root of built datasets; default ``$SNN_SPARSE_DATA_DIR`` or
      ``~/tensorflow_datasets``.
    manual_dir: directory holding the source files (see each builder).

  Returns:
    The prepared TFDS builder.

  Raises:
    DataNotFoundError: the source files are missing (the message says which
      files to put where).
  """
  key = catalog.canonical_name(name)
  cls = builders.builder_class(key)
  root = common.resolve_data_dir(data_dir)
  built = root / cls.name / str(cls.VERSION) / "dataset_info.json"
  if built.exists():
    return cls(data_dir=root)
  # Locate first so that missing data fails fast, before TFDS does anything.
  cls.locate(manual_dir, root)
  builder = cls(data_dir=root)
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  config = tfds.download.DownloadConfig(
      manual_dir=None if manual_dir is None else os.fspath(manual_dir))
  from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=g-import-not-at-top
  was_shown = getattr(tqdm_utils, "_active", True)
  tfds.display_progress_bar(False)  # One log line instead of many bars.
  print(f"Building {cls.name} into {root} (once; later runs reuse it).",
        file=sys.stderr, flush=True)
  try:
    with contextlib.redirect_stdout(io.StringIO()):  # TFDS's own two lines.
      builder.download_and_prepare(download_dir=root / "downloads",
                                   download_config=config)
  except FileExistsError:
    # Another process finished the same build first; its result is complete.
    if not built.exists():
      raise
    return cls(data_dir=root)
  finally:
    tfds.display_progress_bar(was_shown)
  return builder


def check_available(name: str, *, data_dir: str | os.PathLike | None = None,
                    manual_dir: str | os.PathLike | None = None) -> None:
  """Raises ``DataNotFoundError`` (saying where to put which files) unless
  dataset ``name`` is built or its source files can be found; builds
  nothing."""
  cls = builders.builder_class(catalog.canonical_name(name))
  root = common.resolve_data_dir(data_dir)
  if not (root / cls.name / str(cls.VERSION) / "dataset_info.json").exists():
    cls.locate(manual_dir, root)


def _check_stats(key: str, builder, sizes: dict[str, int]) -> None:
  """Warns if a full-size build's statistics differ from the declared ones."""
  info = catalog.dataset_info(key)
  if (sizes["train"], sizes["test"]) != (info.num_train, info.num_test):
    return
  meta = builder.info.metadata or {}
  if "mean" not in meta or "std" not in meta:
    return
  if not (np.allclose(meta["mean"], info.mean, atol=1e-3)
          and np.allclose(meta["std"], info.std, atol=1e-3)):
    warnings.warn(
        f"{key} in {builder.data_dir} has train mean {meta['mean']} and std "
        f"{meta['std']}, but the pipeline normalises with {info.mean} and "
        f"{info.std}: the source files are not the official ones.")


def data_sources(name: str, *, data_dir: str | os.PathLike | None = None,
                 manual_dir: str | os.PathLike | None = None
                 ) -> dict[str, Any]:
  """The random-access data sources ``{"train": ..., "test": ...}``.

  Builds the dataset first if needed (see :func:`prepare`). Each source has
  ``len()`` and ``__getitems__(indices) -> list of dict``, with ``"image"``
  uint8 ``[H, W, C]`` (event datasets: ``"frames"`` ``[T, H, W, 2]``, see
  their builders for the dtype) and ``"label"`` int per example. Cached per
  ``(name, data_dir)``.
  """
  key = catalog.canonical_name(name)
  root = common.resolve_data_dir(data_dir)
  cache_key = (key, str(root))
  with _LOCK:
    if cache_key not in _SOURCES:
      builder = prepare(key, data_dir=root, manual_dir=manual_dir)
      sources = builder.as_data_source()
      _check_stats(key, builder, {s: len(sources[s]) for s in _SPLITS})
      _SOURCES[cache_key] = {s: sources[s] for s in _SPLITS}
    return _SOURCES[cache_key]


class SplitReader:
  """Reads examples of one stored split as arrays; picklable.

  After pickling (into a grain worker) the split is reopened on first use.
  """

  def __init__(self, name: str, split: str, *,
               data_dir: str | os.PathLike | None = None,
               manual_dir: str | os.PathLike | None = None):
    """Opens ``split`` (``"train"`` or ``"test"``) of dataset ``name``.

    Builds the dataset first if needed (see :func:`prepare`).

    Raises:
      DataNotFoundError: the dataset is not built and its sources are
        missing.
    """
    key = catalog.canonical_name(name)
    root = common.resolve_data_dir(data_dir)
    sources = data_sources(key, data_dir=root, manual_dir=manual_dir)
    self._source = sources[split]
    self._args = (key, root, split)
    self._feature = catalog.dataset_info(key).feature

  def __getstate__(self):
    return {**self.__dict__, "_source": None}

  def _get(self):
    if self._source is None:
      key, root, split = self._args
      self._source = data_sources(key, data_dir=root)[split]
    return self._source

  def __len__(self) -> int:
    """Number of examples in the split."""
    return len(self._get())

  def read(self, indices: np.ndarray, shape: tuple[int, ...]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Reads examples: ``(stored arrays [n, *shape], labels int32 [n])``.

    Args:
      indices: int ``[n]`` positions in the split.
      shape: the shape of one example (only used when ``n`` is 0).
    """
    if len(indices) == 0:
      return np.zeros((0, *shape), np.uint8), np.zeros((0,), np.int32)
    records = self._get().__getitems__([int(i) for i in indices])
    images = np.stack([r[self._feature] for r in records])
    labels = np.fromiter((r["label"] for r in records), np.int32,
                         len(records))
    return images, labels
