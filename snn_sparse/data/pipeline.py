"""Batches: built TFDS ``array_record`` splits fed through grain.

The contract with the trainer:

* :func:`train_batches` is an infinite, exactly resumable iterator of
  training batches ``{"input": float32 [B, H, W, C], "label": int32 [B]}``
  (event datasets: ``"input"`` float32 ``[B, T, H, W, 2]``, batch-major);
* :func:`eval_batches` is one deterministic pass over a split (``"test"``,
  ``"validation"`` or ``"train"``), padded to fixed-shape batches that
  carry ``"mask": float32 [B]``.

Which examples each batch holds, and the validation split, are defined in
:mod:`snn_sparse.data.ordering`; the datasets' facts in
:mod:`snn_sparse.data.catalog`; building and opening the data in
:mod:`snn_sparse.data.storage`.

**Augmentation** (train only) is a pure function of ``(seed, epoch, example
index)`` (:mod:`snn_sparse.data.augment`), where the example index is the
example's position in the official train split: a counter-based hash gives
each example its crop offsets, roll shifts and flip bit, so batches do not
depend on what was read before them. This makes
``train_batches(start_step=k)`` equal to the batches from step ``k`` of an
uninterrupted run, without reading the skipped ones. Event frames get the
same spatial transform at every time step.

**Normalisation.** Images: ``input = (pixel / pixel_max - mean) / std`` per
channel, with the mean and std of the full train split (the population
statistics over all its pixels, validation examples included) that the
dataset's builder declares. Event frames are not normalised: ``input`` is
the stored per-polarity count (float32), as the spiking literature feeds
them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import grain
import numpy as np

from snn_sparse.data import augment as augment_lib
from snn_sparse.data import catalog
from snn_sparse.data import ordering
from snn_sparse.data import storage
# Re-exported (see __all__): these live in catalog, ordering and storage.
from snn_sparse.data.catalog import DATASETS
from snn_sparse.data.catalog import DatasetInfo
from snn_sparse.data.catalog import dataset_info
from snn_sparse.data.ordering import VALIDATION_SEED
from snn_sparse.data.ordering import epoch_permutation
from snn_sparse.data.ordering import num_eval_batches
from snn_sparse.data.ordering import split_indices
from snn_sparse.data.ordering import split_sizes
from snn_sparse.data.ordering import steps_per_epoch
from snn_sparse.data.ordering import train_batch_indices
from snn_sparse.data.storage import data_sources
from snn_sparse.data.storage import prepare


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


class _TrainBatch:
  """Global training step -> this process's batch (a grain map function)."""

  def __init__(self, reader: storage.SplitReader, info: DatasetInfo,
               order: ordering.TrainOrder, *, padding: int, flip: bool,
               roll: int):
    self.reader, self.info, self.order = reader, info, order
    self.padding, self.flip, self.roll = padding, flip, roll

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    epoch, idx = self.order(step)
    images, labels = self.reader.read(idx, self.info.example_shape)
    images = augment_lib.augment(
        images, seed=self.order.seed, epoch=epoch, indices=idx,
        padding=self.padding, flip=self.flip, roll=self.roll)
    return {"input": normalize(images, self.info), "label": labels}


class _EvalBatch:
  """Eval batch number -> this process's padded batch (a grain map function)."""

  def __init__(self, reader: storage.SplitReader, info: DatasetInfo,
               order: ordering.EvalOrder, batch_size: int):
    self.reader, self.info, self.order = reader, info, order
    self.b = batch_size

  def __call__(self, batch: int) -> dict[str, np.ndarray]:
    idx = self.order(batch)
    images, labels = self.reader.read(idx, self.info.example_shape)
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
    name: dataset name (see :data:`~snn_sparse.data.catalog.DATASETS`).
    batch_size: per-process batch size ``B``.
    seed: data seed; fixes the order of every epoch and all augmentation.
    start_step: first global step to yield. ``train_batches(start_step=k)``
      yields exactly what an uninterrupted run yields from step ``k`` on,
      without reading the skipped data.
    data_dir: root of built datasets (default :func:`default_data_dir`).
    manual_dir: source files for the first build (see the builders).
    augment: apply the dataset's augmentation, the defaults its builder
      declares (CIFAR: random crop of the zero-padded image and random
      horizontal flip; cifar10_dvs: random horizontal flip and circular
      roll; others: none unless ``crop_padding``/``flip``/``roll`` are
      given). See :func:`snn_sparse.data.augment.augment`.
    process_index: this process's index ``p``.
    process_count: number of processes ``P``; the global batch is ``B * P``.
    crop_padding: overrides the dataset's crop padding when ``augment``.
    flip: overrides the dataset's random flip when ``augment``.
    roll: overrides the dataset's maximal roll when ``augment``.
    worker_count: grain worker processes (0: read in this process).
    prefetch: batches prepared ahead by a background thread (or per worker).
    validation_fraction: fraction in ``[0, 1)`` of the train split held out
      for validation and never trained on
      (:func:`~snn_sparse.data.ordering.split_indices`; the same examples
      whatever ``seed`` and ``process_count``). 0: train on the whole split,
      exactly as without the argument.

  Yields:
    ``{"input": float32 [B, H, W, C] (normalised), "label": int32 [B]}``;
    for event datasets ``"input"`` is float32 ``[B, T, H, W, 2]`` counts.
    The order is :class:`~snn_sparse.data.ordering.TrainOrder`'s.

  Raises:
    DataNotFoundError: the dataset is not built and its sources are missing.
    ValueError: a bad argument, e.g. ``validation_fraction`` outside ``[0,
      1)`` or leaving fewer training examples than one global batch.
  """
  ordering.check_process(process_index, process_count)
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step}.")
  ordering.check_fraction(validation_fraction)
  info = catalog.dataset_info(name)
  reader = storage.SplitReader(name, "train", data_dir=data_dir,
                               manual_dir=manual_dir)
  order = ordering.TrainOrder(
      len(reader), batch_size=batch_size, seed=seed,
      process_index=process_index, process_count=process_count,
      validation_fraction=validation_fraction, name=info.name)
  padding = info.crop_padding if crop_padding is None else int(crop_padding)
  do_flip = info.flip if flip is None else bool(flip)
  max_roll = info.roll if roll is None else int(roll)
  if padding < 0 or max_roll < 0:
    raise ValueError(f"crop_padding and roll must be >= 0, got {padding} and "
                     f"{max_roll}.")
  if not augment:
    padding, do_flip, max_roll = 0, False, 0
  fn = _TrainBatch(reader, info, order, padding=padding, flip=do_flip,
                   roll=max_roll)
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
  :func:`~snn_sparse.data.ordering.split_indices`; needs
  ``validation_fraction > 0``) and ``"train"`` (the train-split examples
  trained on: all of them when ``validation_fraction`` is 0). Pass the
  ``validation_fraction`` given to :func:`train_batches`. Validation and
  train examples are read from the stored train split, without
  augmentation.

  The order is :class:`~snn_sparse.data.ordering.EvalOrder`'s: by increasing
  position in the stored split. Every process yields the same number of
  batches, :func:`~snn_sparse.data.ordering.num_eval_batches`, and over all
  processes every example appears exactly once with mask 1.

  Yields:
    ``{"input": float32 [B, H, W, C], "label": int32 [B], "mask": float32
    [B]}`` (event datasets: ``"input"`` ``[B, T, H, W, 2]``); padding rows
    have input 0, label 0 and mask 0.

  Raises:
    DataNotFoundError: the dataset is not built and its sources are missing.
  """
  ordering.check_process(process_index, process_count)
  ordering.check_positive("batch_size", batch_size)
  ordering.check_split(split, validation_fraction)
  stored = "test" if split == "test" else "train"
  info = catalog.dataset_info(name)
  reader = storage.SplitReader(name, stored, data_dir=data_dir,
                               manual_dir=manual_dir)
  order = ordering.EvalOrder(
      split, len(reader), batch_size=batch_size, process_index=process_index,
      process_count=process_count, validation_fraction=validation_fraction)
  fn = _EvalBatch(reader, info, order, batch_size)
  return _iterate(grain.MapDataset.range(order.num_batches).map(fn),
                  worker_count, prefetch)


__all__ = [
    "DATASETS", "DatasetInfo", "VALIDATION_SEED", "data_sources",
    "dataset_info", "epoch_permutation", "eval_batches", "normalize",
    "num_eval_batches", "prepare", "split_indices", "split_sizes",
    "steps_per_epoch", "train_batch_indices", "train_batches",
]
