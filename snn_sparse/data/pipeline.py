"""Input pipeline: built TFDS ``array_record`` datasets fed through grain.

The contract with the trainer:

* :func:`train_batches` is an infinite, exactly resumable iterator of
  training batches ``{"input": float32 [B, H, W, C], "label": int32 [B]}``
  (event datasets: ``"input"`` float32 ``[B, T, H, W, 2]``, batch-major);
* :func:`eval_batches` is one deterministic pass over a split (``"test"``,
  ``"validation"`` or ``"train"``), padded to fixed-shape batches that
  carry ``"mask": float32 [B]``;
* :func:`dataset_info`, :func:`split_sizes` and :func:`steps_per_epoch`
  need no data at all.

**Validation split.** ``validation_fraction = f`` in ``[0, 1)`` holds ``V =
round(f * N)`` of the ``N`` examples of the official train split out of
training (Python's ``round``: digits at 0.1 holds out 144 of 1,437 and
trains on 1,293; fashion_mnist 6,000 of 60,000, training on 54,000). The
validation examples are the first ``V`` entries of the fixed permutation
``np.random.default_rng(VALIDATION_SEED).permutation(N)``, sorted; the
other ``M = N - V`` train-split indices, sorted, are the training examples
``R`` (:func:`split_indices`). The choice depends on ``N`` and ``f`` only,
never on the training seed, the process count or the data, so every run
and every process agrees on it, the split sizes are known without data
(:func:`split_sizes`), and a larger fraction holds out a superset of a
smaller one. It is a plain random subset, not stratified by class: that
would need the labels, i.e. reading the whole train split; the class
proportions of the validation set follow those of the train split up to
sampling noise. With ``f = 0`` (the default) there is no validation split
and ``R`` is the whole train split, so everything below is unchanged.

**Order.** Epoch ``e`` visits the training examples in the order
``R[np.random.default_rng([seed, e]).permutation(M)]`` (with ``f = 0``
simply ``np.random.default_rng([seed, e]).permutation(N)``); global batch
``b`` of the epoch is the slice ``[b * G, (b + 1) * G)`` of it, where ``G =
batch_size * process_count``, and the last ``M % G`` examples of each epoch
are dropped. Training step ``s`` is batch ``s % S`` of epoch ``s // S``
with ``S = M // G`` (:func:`steps_per_epoch`). Process ``p`` takes the rows
``[p * B, (p + 1) * B)`` of the global batch, so the per-process batches of
``process_count`` processes, concatenated in process order, are exactly the
global batch of a single process running with ``batch_size * process_count``.

**Augmentation** (train only) is a pure function of ``(seed, epoch, example
index)`` (:mod:`snn_sparse.data.augment`), where the example index is the
example's position in the official train split (an entry of ``R``): a
counter-based hash gives each example its crop offsets, roll shifts and flip
bit, so batches do not depend on what was read before them.
This makes ``train_batches(start_step=k)`` equal to the batches from step
``k`` of an uninterrupted run, without reading the skipped ones. Event
frames get the same spatial transform at every time step.

**Normalisation.** Images: ``input = (pixel / pixel_max - mean) / std`` per
channel, with the mean and std of the full train split (the population
statistics over all its pixels, validation examples included) listed in
:data:`DATASETS`. Event frames are not normalised: ``input`` is the stored
per-polarity count (float32), as the spiking literature feeds them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import grain
import numpy as np

from snn_sparse.data import augment as augment_lib
from snn_sparse.data import builders
from snn_sparse.data.builders import common


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
    pixel_max: the stored pixel value that maps to 1.0 (16 for digits, else
      255).
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


#: Every dataset of the pipeline. digits: computed on the fixed 1,437-image
#: train split, pixels / 16. fashion_mnist: computed on the 60,000 train
#: images. CIFAR: the standard statistics of the 50,000 train images. Event
#: datasets (``frames > 0``) are not normalised (mean 0, std 1); their
#: augmentation follows the common VGGSNN/TET recipe for CIFAR10-DVS (flip,
#: circular roll by up to 5 pixels) and is off by default for the others
#: (never flip them: gestures and digits are not mirror-symmetric).
_EVENT_STATS = {"mean": (0.0, 0.0), "std": (1.0, 1.0), "pixel_max": 1}
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        name="digits", num_classes=10, input_shape=(8, 8, 1),
        num_train=1437, num_test=360, mean=(0.30488390,), std=(0.37587267,),
        pixel_max=16),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist", num_classes=10, input_shape=(28, 28, 1),
        num_train=60000, num_test=10000, mean=(0.28604060,),
        std=(0.35302424,)),
    "cifar10": DatasetInfo(
        name="cifar10", num_classes=10, input_shape=(32, 32, 3),
        num_train=50000, num_test=10000,
        mean=(0.49139968, 0.48215841, 0.44653091),
        std=(0.24703223, 0.24348513, 0.26158784),
        crop_padding=4, flip=True),
    "cifar100": DatasetInfo(
        name="cifar100", num_classes=100, input_shape=(32, 32, 3),
        num_train=50000, num_test=10000,
        mean=(0.50707516, 0.48654887, 0.44091784),
        std=(0.26733429, 0.25643846, 0.27615047),
        crop_padding=4, flip=True),
    "cifar10_dvs": DatasetInfo(
        name="cifar10_dvs", num_classes=10, input_shape=(48, 48, 2),
        num_train=9000, num_test=1000, frames=10, flip=True, roll=5,
        **_EVENT_STATS),
    "dvs_gesture": DatasetInfo(
        name="dvs_gesture", num_classes=11, input_shape=(32, 32, 2),
        num_train=1176, num_test=288, frames=16, **_EVENT_STATS),
    "nmnist": DatasetInfo(
        name="nmnist", num_classes=10, input_shape=(34, 34, 2),
        num_train=60000, num_test=10000, frames=10, **_EVENT_STATS),
    "digits_events": DatasetInfo(
        name="digits_events", num_classes=10, input_shape=(16, 16, 2),
        num_train=1437, num_test=360, frames=6, **_EVENT_STATS),
}

_SPLITS = ("train", "test")  # The stored TFDS splits.
_EVAL_SPLITS = ("train", "validation", "test")


def _canonical(name: str) -> str:
  key = str(name).strip().lower().replace("-", "_")
  key = key.removeprefix("snn_")
  if key not in DATASETS:
    raise ValueError(f"Unknown dataset {name!r}; choose one of "
                     f"{sorted(DATASETS)}.")
  return key


def dataset_info(name: str) -> DatasetInfo:
  """Static :class:`DatasetInfo` of dataset ``name`` (no data is read)."""
  return DATASETS[_canonical(name)]


def _check_positive(field: str, value: int) -> None:
  if not isinstance(value, (int, np.integer)) or value <= 0:
    raise ValueError(f"{field} must be a positive integer, got {value!r}.")


def _check_process(process_index: int, process_count: int) -> None:
  _check_positive("process_count", process_count)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index must be in [0, {process_count}), got "
                     f"{process_index!r}.")


def _check_fraction(validation_fraction) -> float:
  """``validation_fraction`` as a float in ``[0, 1)``, else a ValueError."""
  ok = (isinstance(validation_fraction, (int, float, np.integer, np.floating))
        and not isinstance(validation_fraction, (bool, np.bool_))
        and 0.0 <= float(validation_fraction) < 1.0)
  if not ok:
    raise ValueError(
        f"validation_fraction must be a number in [0, 1), got "
        f"{validation_fraction!r}: it is the fraction of the train split held "
        "out for validation (e.g. 0.1), or 0 for no validation split.")
  return float(validation_fraction)


def _num_validation(num_train: int, validation_fraction, name: str) -> int:
  """``round(validation_fraction * num_train)``, checked to be useful."""
  fraction = _check_fraction(validation_fraction)
  v = int(round(fraction * num_train))
  if fraction > 0 and v == 0:
    raise ValueError(
        f"validation_fraction={validation_fraction!r} holds out round("
        f"{validation_fraction!r} * {num_train}) = 0 of the {num_train} train "
        f"examples of {name}: pass 0 for no validation split, or at least "
        f"1/{num_train} to hold out at least one example.")
  return v


#: The seed of the fixed permutation that chooses the validation examples
#: (see the module docstring). Part of the data contract: changing it changes
#: every validation split.
VALIDATION_SEED = 0x5EED_0FF5


def split_indices(num_train: int, validation_fraction: float
                  ) -> tuple[np.ndarray, np.ndarray]:
  """The train split divided into training and validation examples.

  Args:
    num_train: ``N``, the size of the official train split.
    validation_fraction: ``f`` in ``[0, 1)``; ``V = round(f * N)`` examples
      are held out (a positive ``f`` must hold out at least one).

  Returns:
    ``(train_idx, val_idx)``: sorted int64 ``[N - V]`` and ``[V]`` positions
    in the train split, disjoint, together ``0 .. N - 1``. ``val_idx`` is
    the sorted first ``V`` entries of
    ``np.random.default_rng(VALIDATION_SEED).permutation(N)``: it depends
    on ``N`` and ``f`` only (not on any seed or process count), and grows
    monotonically with ``f``. With ``f = 0``: ``(arange(N), [])``.
  """
  _check_positive("num_train", num_train)
  v = _num_validation(int(num_train), validation_fraction, "the split")
  if v == 0:
    return np.arange(num_train, dtype=np.int64), np.zeros((0,), np.int64)
  order = np.random.default_rng(VALIDATION_SEED).permutation(int(num_train))
  val_idx = np.sort(order[:v]).astype(np.int64)
  train_idx = np.sort(order[v:]).astype(np.int64)
  return train_idx, val_idx


def split_sizes(name: str, validation_fraction: float = 0.0
                ) -> dict[str, int]:
  """Split sizes ``{"train": N - V, "validation": V, "test": num_test}``.

  ``V = round(validation_fraction * num_train)`` (see :func:`split_indices`);
  ``"train"`` counts the examples trained on. Needs no data: the sizes are
  those of the official splits in :func:`dataset_info`.
  """
  info = dataset_info(name)
  v = _num_validation(info.num_train, validation_fraction, info.name)
  return {"train": info.num_train - v, "validation": v,
          "test": info.num_test}


def _steps(num_examples: int, batch_size: int, process_count: int,
           name: str, num_validation: int = 0,
           validation_fraction: float = 0.0) -> int:
  """Steps per epoch over ``num_examples`` training examples (see module doc).

  ``num_validation`` examples of the train split were held out for
  validation with ``validation_fraction`` (both only named in the error).
  """
  _check_positive("batch_size", batch_size)
  _check_positive("process_count", process_count)
  steps = num_examples // (batch_size * process_count)
  if steps == 0:
    if num_validation:
      raise ValueError(
          f"batch_size {batch_size} x process_count {process_count} exceeds "
          f"the {num_examples} training examples of {name} left after "
          f"holding out {num_validation} of its {num_examples + num_validation}"
          f" train examples for validation (validation_fraction="
          f"{validation_fraction!r}): lower validation_fraction or the batch "
          "size.")
    raise ValueError(
        f"batch_size {batch_size} x process_count {process_count} exceeds the "
        f"{num_examples} training examples of {name}.")
  return steps


def steps_per_epoch(name: str, batch_size: int, process_count: int = 1,
                    validation_fraction: float = 0.0) -> int:
  """Training steps per epoch: ``M // (batch_size * process_count)``.

  ``batch_size`` is the per-process batch size; ``M`` is the number of
  training examples, the official train split size of :func:`dataset_info`
  less the ``round(validation_fraction * num_train)`` held out for
  validation (:func:`split_sizes`).
  """
  info = dataset_info(name)
  sizes = split_sizes(name, validation_fraction)
  return _steps(sizes["train"], batch_size, process_count, info.name,
                sizes["validation"], validation_fraction)


def _check_split(split: str, validation_fraction) -> None:
  """Checks an eval ``split`` and the ``validation_fraction`` it needs."""
  fraction = _check_fraction(validation_fraction)
  if split not in _EVAL_SPLITS:
    raise ValueError(f"split must be one of {_EVAL_SPLITS}, got {split!r}.")
  if split == "validation" and fraction == 0:
    raise ValueError(
        f"split='validation' needs validation_fraction > 0, got "
        f"{validation_fraction!r}: there is no validation split. Pass the "
        "validation_fraction given to train_batches (e.g. 0.1), or use "
        "split='test'.")


def num_eval_batches(name: str, batch_size: int, split: str = "test",
                     process_count: int = 1,
                     validation_fraction: float = 0.0) -> int:
  """Batches of one :func:`eval_batches` pass: ``ceil(n / (B * P))``.

  ``n`` is the size of ``split`` in :func:`split_sizes` (``"train"``: the
  training examples left after holding out the validation examples).
  """
  _check_positive("batch_size", batch_size)
  _check_positive("process_count", process_count)
  _check_split(split, validation_fraction)
  n = split_sizes(name, validation_fraction)[split]
  return math.ceil(n / (batch_size * process_count))


# ----------------------------------------------------------------------------
# Building and opening.
# ----------------------------------------------------------------------------

_LOCK = threading.Lock()
_SOURCES: dict[tuple[str, str], dict[str, Any]] = {}


def prepare(name: str, *, data_dir: str | os.PathLike | None = None,
            manual_dir: str | os.PathLike | None = None):
  """Builds dataset ``name`` into ``data_dir`` unless already built.

  The build happens once per data dir (``<data_dir>/snn_<name>/1.0.0``) and
  is reused afterwards; ``manual_dir`` only matters for the first build.

  Args:
    name: pipeline dataset name (see :data:`DATASETS`).
    data_dir: root of built datasets; default ``$SNN_SPARSE_DATA_DIR`` or
      ``~/tensorflow_datasets``.
    manual_dir: directory holding the source files (see each builder).

  Returns:
    The prepared TFDS builder.

  Raises:
    DataNotFoundError: the source files are missing (the message says which
      files to put where).
  """
  key = _canonical(name)
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


def _check_stats(key: str, builder, sizes: dict[str, int]) -> None:
  """Warns if a full-size build's statistics differ from :data:`DATASETS`."""
  info = DATASETS[key]
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
  key = _canonical(name)
  root = common.resolve_data_dir(data_dir)
  cache_key = (key, str(root))
  with _LOCK:
    if cache_key not in _SOURCES:
      builder = prepare(key, data_dir=root, manual_dir=manual_dir)
      sources = builder.as_data_source()
      _check_stats(key, builder, {s: len(sources[s]) for s in _SPLITS})
      _SOURCES[cache_key] = {s: sources[s] for s in _SPLITS}
    return _SOURCES[cache_key]


class _Source:
  """A split's data source, reopened lazily after pickling (grain workers)."""

  def __init__(self, key: str, root: pathlib.Path, split: str):
    self._args = (key, root, split)
    self._source = None
    self._feature = DATASETS[key].feature

  def __getstate__(self):
    return {**self.__dict__, "_source": None}

  def get(self):
    if self._source is None:
      key, root, split = self._args
      self._source = data_sources(key, data_dir=root)[split]
    return self._source

  def __len__(self) -> int:
    return len(self.get())

  def read(self, indices: np.ndarray, shape: tuple[int, ...]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Reads examples: ``(stored arrays [n, *shape], labels int32 [n])``."""
    if len(indices) == 0:
      return np.zeros((0, *shape), np.uint8), np.zeros((0,), np.int32)
    records = self.get().__getitems__([int(i) for i in indices])
    images = np.stack([r[self._feature] for r in records])
    labels = np.fromiter((r["label"] for r in records), np.int32,
                         len(records))
    return images, labels


# ----------------------------------------------------------------------------
# Order and normalisation (pure numpy; augmentation is in augment.py).
# ----------------------------------------------------------------------------


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The visiting order of epoch ``epoch``: int64 ``[num_examples]``."""
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def train_batch_indices(num_examples: int, *, batch_size: int, seed: int,
                        step: int, process_index: int = 0,
                        process_count: int = 1,
                        validation_fraction: float = 0.0) -> np.ndarray:
  """Example indices of this process's batch at training step ``step``.

  Args:
    num_examples: ``N``, the size of the whole train split (validation
      examples included).
    batch_size: per-process batch size ``B``.
    seed: data seed.
    step: global training step.
    process_index: this process's index ``p``.
    process_count: number of processes ``P``.
    validation_fraction: fraction of the train split held out (see
      :func:`split_indices`); its examples are never returned.

  Returns:
    int64 ``[batch_size]``: positions in the train split (see module doc).
  """
  _check_process(process_index, process_count)
  train_idx, val_idx = split_indices(num_examples, validation_fraction)
  steps = _steps(len(train_idx), batch_size, process_count, "the split",
                 len(val_idx), validation_fraction)
  epoch, b = divmod(step, steps)
  start = b * batch_size * process_count + process_index * batch_size
  return train_idx[epoch_permutation(len(train_idx), seed, epoch)[
      start:start + batch_size]]


def normalize(images: np.ndarray, info: DatasetInfo) -> np.ndarray:
  """Raw pixels ``[..., C]`` -> float32 ``(x / pixel_max - mean) / std``.

  Event frames (``info.frames > 0``) are returned as float32 counts.
  """
  if info.frames:
    return np.asarray(images, np.float32)
  std = np.asarray(info.std, np.float64)
  scale = (1.0 / (info.pixel_max * std)).astype(np.float32)
  shift = (-np.asarray(info.mean, np.float64) / std).astype(np.float32)
  return images.astype(np.float32) * scale + shift


# ----------------------------------------------------------------------------
# Batches.
# ----------------------------------------------------------------------------


class _TrainBatch:
  """Global training step -> this process's batch (a grain map function)."""

  def __init__(self, source: _Source, info: DatasetInfo, *, indices,
               num_validation, validation_fraction, batch_size, seed,
               process_index, process_count, padding, flip, roll=0):
    # indices: int64 [M], the training examples R (positions in the split).
    self.source, self.info, self.indices = source, info, indices
    self.n, self.b, self.seed = len(indices), batch_size, seed
    self.pi, self.pc = process_index, process_count
    self.padding, self.flip, self.roll = padding, flip, roll
    self.steps = _steps(self.n, batch_size, process_count, info.name,
                        num_validation, validation_fraction)
    self._perms: dict[int, np.ndarray] = {}

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_perms"] = {}
    return state

  def _perm(self, epoch: int) -> np.ndarray:
    perm = self._perms.get(epoch)
    if perm is None:
      perm = epoch_permutation(self.n, self.seed, epoch)
      self._perms = {epoch: perm, **{k: v for k, v in self._perms.items()
                                     if k == epoch - 1}}
    return perm

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    epoch, b = divmod(int(step), self.steps)
    start = (b * self.pc + self.pi) * self.b
    idx = self.indices[self._perm(epoch)[start:start + self.b]]
    images, labels = self.source.read(idx, self.info.example_shape)
    images = augment_lib.augment(
        images, seed=self.seed, epoch=epoch, indices=idx,
        padding=self.padding, flip=self.flip, roll=self.roll)
    return {"input": normalize(images, self.info), "label": labels}


class _EvalBatch:
  """Eval batch number -> this process's padded batch (a grain map function)."""

  def __init__(self, source: _Source, info: DatasetInfo, *, indices,
               batch_size, process_index, process_count):
    # indices: int64 [n], the examples of the pass (positions in the source).
    self.source, self.info, self.indices = source, info, indices
    self.b = batch_size
    self.pi, self.pc = process_index, process_count

  def __call__(self, batch: int) -> dict[str, np.ndarray]:
    start = (int(batch) * self.pc + self.pi) * self.b
    idx = self.indices[start:start + self.b]
    images, labels = self.source.read(idx, self.info.example_shape)
    k = len(idx)
    x = np.zeros((self.b, *self.info.example_shape), np.float32)
    x[:k] = normalize(images, self.info)
    y = np.zeros((self.b,), np.int32)
    y[:k] = labels
    mask = np.zeros((self.b,), np.float32)
    mask[:k] = 1.0
    return {"input": x, "label": y, "mask": mask}


def _iterate(dataset: grain.MapDataset, worker_count: int,
             prefetch: int) -> Iterator[dict[str, np.ndarray]]:
  """Runs a MapDataset of batches in order, in-process or in grain workers."""
  if worker_count < 0 or prefetch < 0:
    raise ValueError(f"worker_count and prefetch must be >= 0, got "
                     f"{worker_count} and {prefetch}.")
  if worker_count > 0:
    from absl import flags  # pylint: disable=g-import-not-at-top
    if not flags.FLAGS.is_parsed():  # grain workers read absl flags.
      flags.FLAGS.mark_as_parsed()
    options = grain.MultiprocessingOptions(
        num_workers=worker_count, per_worker_buffer_size=max(prefetch, 1))
    return iter(dataset.to_iter_dataset(
        grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
    ).mp_prefetch(options))
  read = grain.ReadOptions(num_threads=1 if prefetch else 0,
                           prefetch_buffer_size=prefetch)
  return iter(dataset.to_iter_dataset(read))


def _open(name: str, split: str, data_dir, manual_dir
          ) -> tuple[DatasetInfo, _Source, int]:
  """``(info, source, size)`` of the stored split ``"train"`` or ``"test"``."""
  key = _canonical(name)
  root = common.resolve_data_dir(data_dir)
  n = len(data_sources(key, data_dir=root, manual_dir=manual_dir)[split])
  return DATASETS[key], _Source(key, root, split), n


def train_batches(name: str, *, batch_size: int, seed: int,
                  start_step: int = 0,
                  data_dir: str | os.PathLike | None = None,
                  manual_dir: str | os.PathLike | None = None,
                  augment: bool = True, process_index: int = 0,
                  process_count: int = 1, crop_padding: int | None = None,
                  flip: bool | None = None, roll: int | None = None,
                  worker_count: int = 0, prefetch: int = 2,
                  validation_fraction: float = 0.0
                  ) -> Iterator[dict[str, np.ndarray]]:
  """Infinite iterator over training batches, resumable at any step.

  Args:
    name: dataset name (see :data:`DATASETS`).
    batch_size: per-process batch size ``B``.
    seed: data seed; fixes the order of every epoch and all augmentation.
    start_step: first global step to yield. ``train_batches(start_step=k)``
      yields exactly what an uninterrupted run yields from step ``k`` on,
      without reading the skipped data.
    data_dir: root of built datasets (default :func:`default_data_dir`).
    manual_dir: source files for the first build (see the builders).
    augment: apply the dataset's augmentation (CIFAR: random 32x32 crop of
      the 4-pixel zero-padded image and random horizontal flip;
      cifar10_dvs: random horizontal flip and circular roll by up to 5
      pixels; others: none unless ``crop_padding``/``flip``/``roll`` are
      given). See :func:`snn_sparse.data.augment.augment`.
    process_index: this process's index ``p``.
    process_count: number of processes ``P``; the global batch is ``B * P``.
    crop_padding: overrides the dataset's crop padding when ``augment``.
    flip: overrides the dataset's random flip when ``augment``.
    roll: overrides the dataset's maximal roll when ``augment``.
    worker_count: grain worker processes (0: read in this process).
    prefetch: batches prepared ahead by a background thread (or per worker).
    validation_fraction: fraction in ``[0, 1)`` of the train split held out
      for validation and never trained on (:func:`split_indices`; the same
      examples whatever ``seed`` and ``process_count``). 0: train on the
      whole split, exactly as without the argument.

  Yields:
    ``{"input": float32 [B, H, W, C] (normalised), "label": int32 [B]}``;
    for event datasets ``"input"`` is float32 ``[B, T, H, W, 2]`` counts.
    The order is described in the module docstring.

  Raises:
    DataNotFoundError: the dataset is not built and its sources are missing.
    ValueError: a bad argument, e.g. ``validation_fraction`` outside ``[0,
      1)`` or leaving fewer training examples than one global batch.
  """
  _check_process(process_index, process_count)
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}.")
  _check_fraction(validation_fraction)
  info, source, n = _open(name, "train", data_dir, manual_dir)
  train_idx, val_idx = split_indices(n, validation_fraction)
  padding = info.crop_padding if crop_padding is None else int(crop_padding)
  do_flip = info.flip if flip is None else bool(flip)
  max_roll = info.roll if roll is None else int(roll)
  if padding < 0 or max_roll < 0:
    raise ValueError(f"crop_padding and roll must be >= 0, got {padding} and "
                     f"{max_roll}.")
  if not augment:
    padding, do_flip, max_roll = 0, False, 0
  fn = _TrainBatch(source, info, indices=train_idx,
                   num_validation=len(val_idx),
                   validation_fraction=validation_fraction,
                   batch_size=batch_size, seed=seed,
                   process_index=process_index, process_count=process_count,
                   padding=padding, flip=do_flip, roll=max_roll)
  dataset = grain.MapDataset.range(int(start_step), sys.maxsize).map(fn)
  return _iterate(dataset, worker_count, prefetch)


def eval_batches(name: str, *, batch_size: int, split: str = "test",
                 data_dir: str | os.PathLike | None = None,
                 manual_dir: str | os.PathLike | None = None,
                 process_index: int = 0, process_count: int = 1,
                 worker_count: int = 0, prefetch: int = 2,
                 validation_fraction: float = 0.0
                 ) -> Iterator[dict[str, np.ndarray]]:
  """One deterministic pass over ``split``, in fixed-shape padded batches.

  The splits: ``"test"`` (the official test split; ``validation_fraction``
  is only checked), ``"validation"`` (the ``round(validation_fraction *
  num_train)`` examples held out of the official train split, see
  :func:`split_indices`; needs ``validation_fraction > 0``) and ``"train"``
  (the train-split examples trained on: all of them when
  ``validation_fraction`` is 0). Pass the ``validation_fraction`` given to
  :func:`train_batches`. Validation and train examples are read from the
  stored train split, without augmentation.

  Global eval batch ``b`` holds examples ``[b * G, (b + 1) * G)`` of the
  split in stored order, i.e. by increasing position in the stored TFDS
  split (``G = batch_size * process_count``); process ``p`` takes rows
  ``[p * B, (p + 1) * B)`` of it. Every process yields the same number of
  batches, :func:`num_eval_batches`, and over all processes every example
  appears exactly once with mask 1.

  Yields:
    ``{"input": float32 [B, H, W, C], "label": int32 [B], "mask": float32
    [B]}`` (event datasets: ``"input"`` ``[B, T, H, W, 2]``); padding rows
    have input 0, label 0 and mask 0.

  Raises:
    DataNotFoundError: the dataset is not built and its sources are missing.
  """
  _check_process(process_index, process_count)
  _check_positive("batch_size", batch_size)
  _check_split(split, validation_fraction)
  stored = "test" if split == "test" else "train"
  info, source, n = _open(name, stored, data_dir, manual_dir)
  if split == "test":
    indices = np.arange(n, dtype=np.int64)
  else:
    indices = split_indices(n, validation_fraction)[split == "validation"]
  fn = _EvalBatch(source, info, indices=indices, batch_size=batch_size,
                  process_index=process_index, process_count=process_count)
  count = math.ceil(len(indices) / (batch_size * process_count))
  return _iterate(grain.MapDataset.range(count).map(fn), worker_count,
                  prefetch)
