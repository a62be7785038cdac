"""Datasets: TFDS builders (array_record, no TensorFlow) and a grain pipeline.

Modules: :mod:`.builders` (one TFDS builder per dataset, each declaring its
dataset's facts), :mod:`.catalog` (those facts as :class:`DatasetInfo`),
:mod:`.storage` (building and opening the data on disk), :mod:`.ordering`
(the validation split and which examples each batch holds) and
:mod:`.pipeline` (the batch iterators).

Public API::

  dataset_info(name) -> DatasetInfo
  split_sizes(name, validation_fraction=0.0) -> {"train", "validation", "test"}
  split_indices(num_train, validation_fraction) -> (train_idx, val_idx)
  steps_per_epoch(name, batch_size, process_count=1,
                  validation_fraction=0.0) -> int
  train_batches(name, *, batch_size, seed, start_step=0, ...,
                validation_fraction=0.0) -> Iterator[dict]
  eval_batches(name, *, batch_size, split="test", ...,
               validation_fraction=0.0) -> Iterator[dict]
  num_eval_batches(name, batch_size, split="test", process_count=1,
                   validation_fraction=0.0) -> int
  prepare(name, *, data_dir=None, manual_dir=None) -> TFDS builder

Datasets: ``digits`` (built-in, offline), ``fashion_mnist``, ``cifar10``,
``cifar100``, and the event datasets ``cifar10_dvs``, ``dvs_gesture``,
``nmnist`` and ``digits_events`` (built-in, offline), whose batches hold
event frames ``"input"`` float32 ``[B, T, H, W, 2]``. Built data lives in
``<data_dir>/snn_<name>/1.0.0``, where ``data_dir`` defaults to
``$SNN_SPARSE_DATA_DIR`` or ``~/tensorflow_datasets``.

``validation_fraction`` holds a fixed, seed-independent random subset of
the official train split out of training, as the ``"validation"`` split of
:func:`eval_batches` (see :mod:`snn_sparse.data.ordering`).

Event files and frames: :mod:`snn_sparse.data.events` (readers of AEDAT
2.0, AEDAT 3.1 and N-MNIST files), :mod:`snn_sparse.data.framing` (events to
``[T, H, W, 2]`` frames, resizing) and :mod:`snn_sparse.data.saccades`
(event-camera emulation of static images).
"""

from __future__ import annotations

from snn_sparse.data.builders.common import DataNotFoundError
from snn_sparse.data.builders.common import default_data_dir
from snn_sparse.data.catalog import DATASETS
from snn_sparse.data.catalog import DatasetInfo
from snn_sparse.data.catalog import dataset_info
from snn_sparse.data.events import EventFileError
from snn_sparse.data.ordering import num_eval_batches
from snn_sparse.data.ordering import split_indices
from snn_sparse.data.ordering import split_sizes
from snn_sparse.data.ordering import steps_per_epoch
from snn_sparse.data.pipeline import eval_batches
from snn_sparse.data.pipeline import train_batches
from snn_sparse.data.storage import data_sources
from snn_sparse.data.storage import prepare

__all__ = [
    "DATASETS", "DataNotFoundError", "DatasetInfo", "EventFileError",
    "data_sources", "dataset_info", "default_data_dir", "eval_batches",
    "num_eval_batches", "prepare", "split_indices", "split_sizes",
    "steps_per_epoch", "train_batches",
]
