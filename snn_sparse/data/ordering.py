"""Which examples each batch holds: the validation split and the batch order.

Pure numpy on example positions; no data is read.

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

**Training order.** Epoch ``e`` visits the training examples in the order
``R[np.random.default_rng([seed, e]).permutation(M)]`` (with ``f = 0``
simply ``np.random.default_rng([seed, e]).permutation(N)``); global batch
``b`` of the epoch is the slice ``[b * G, (b + 1) * G)`` of it, where ``G =
batch_size * process_count``, and the last ``M % G`` examples of each epoch
are dropped. Training step ``s`` is batch ``s % S`` of epoch ``s // S``
with ``S = M // G`` (:func:`steps_per_epoch`). Process ``p`` takes the rows
``[p * B, (p + 1) * B)`` of the global batch, so the per-process batches of
``process_count`` processes, concatenated in process order, are exactly the
global batch of a single process running with ``batch_size * process_count``
(:class:`TrainOrder`).

**Eval order.** One pass over a split visits its examples by increasing
position in the stored split; global eval batch ``b`` holds examples ``[b *
G, (b + 1) * G)`` of it, and process ``p`` takes rows ``[p * B, (p + 1) *
B)`` of that (:class:`EvalOrder`); the last batch may be short.
"""

from __future__ import annotations

import math

import numpy as np

from snn_sparse.data import catalog

#: The seed of the fixed permutation that chooses the validation examples
#: (see the module docstring). Part of the data contract: changing it changes
#: every validation split.
VALIDATION_SEED = 0x5EED_0FF5

#: The splits an eval pass can cover.
EVAL_SPLITS = ("train", "validation", "test")


# ----------------------------------------------------------------------------
# Argument checks.
# ----------------------------------------------------------------------------


def check_positive(field: str, value: int) -> None:
  """Raises ValueError naming ``field`` unless ``value`` is an int > 0."""
  if not isinstance(value, (int, np.integer)) or value <= 0:
    raise ValueError(f"{field} must be a positive integer, got {value!r}.")


def check_process(process_index: int, process_count: int) -> None:
  """Raises ValueError unless ``0 <= process_index < process_count``."""
  check_positive("process_count", process_count)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index must be in [0, {process_count}), got "
                     f"{process_index!r}.")


def check_fraction(validation_fraction) -> float:
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


def check_split(split: str, validation_fraction) -> None:
  """Checks an eval ``split`` and the ``validation_fraction`` it needs."""
  fraction = check_fraction(validation_fraction)
  if split not in EVAL_SPLITS:
    raise ValueError(f"split must be one of {EVAL_SPLITS}, got {split!r}.")
  if split == "validation" and fraction == 0:
    raise ValueError(
        f"split='validation' needs validation_fraction > 0, got "
        f"{validation_fraction!r}: there is no validation split. Pass the "
        "validation_fraction given to train_batches (e.g. 0.1), or use "
        "split='test'.")


def _num_validation(num_train: int, validation_fraction, name: str) -> int:
  """``round(validation_fraction * num_train)``, checked to be useful."""
  fraction = check_fraction(validation_fraction)
  v = int(round(fraction * num_train))
  if fraction > 0 and v == 0:
    raise ValueError(
        f"validation_fraction={validation_fraction!r} holds out round("
        f"{validation_fraction!r} * {num_train}) = 0 of the {num_train} train "
        f"examples of {name}: pass 0 for no validation split, or at least "
        f"1/{num_train} to hold out at least one example.")
  return v


def _steps(num_examples: int, batch_size: int, process_count: int,
           name: str, num_validation: int = 0,
           validation_fraction: float = 0.0) -> int:
  """Steps per epoch over ``num_examples`` training examples (see module doc).

  ``num_validation`` examples of the train split were held out for
  validation with ``validation_fraction`` (both only named in the error).
  """
  check_positive("batch_size", batch_size)
  check_positive("process_count", process_count)
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


def _num_batches(num_examples: int, batch_size: int,
                 process_count: int) -> int:
  """Batches of one eval pass over ``num_examples``: ``ceil(n / (B * P))``."""
  return math.ceil(num_examples / (batch_size * process_count))


# ----------------------------------------------------------------------------
# Splits and their sizes.
# ----------------------------------------------------------------------------


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
  check_positive("num_train", num_train)
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
  those of the official splits in :func:`~snn_sparse.data.catalog.dataset_info`.
  """
  info = catalog.dataset_info(name)
  v = _num_validation(info.num_train, validation_fraction, info.name)
  return {"train": info.num_train - v, "validation": v,
          "test": info.num_test}


def steps_per_epoch(name: str, batch_size: int, process_count: int = 1,
                    validation_fraction: float = 0.0) -> int:
  """Training steps per epoch: ``M // (batch_size * process_count)``.

  ``batch_size`` is the per-process batch size; ``M`` is the number of
  training examples, the official train split size less the
  ``round(validation_fraction * num_train)`` held out for validation
  (:func:`split_sizes`).
  """
  info = catalog.dataset_info(name)
  sizes = split_sizes(name, validation_fraction)
  return _steps(sizes["train"], batch_size, process_count, info.name,
                sizes["validation"], validation_fraction)


def num_eval_batches(name: str, batch_size: int, split: str = "test",
                     process_count: int = 1,
                     validation_fraction: float = 0.0) -> int:
  """Batches of one eval pass: ``ceil(n / (B * P))``.

  ``n`` is the size of ``split`` in :func:`split_sizes` (``"train"``: the
  training examples left after holding out the validation examples).
  """
  check_positive("batch_size", batch_size)
  check_positive("process_count", process_count)
  check_split(split, validation_fraction)
  n = split_sizes(name, validation_fraction)[split]
  return _num_batches(n, batch_size, process_count)


# ----------------------------------------------------------------------------
# Batch order.
# ----------------------------------------------------------------------------


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  """The visiting order of epoch ``epoch``: int64 ``[num_examples]``."""
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


class TrainOrder:
  """Global training step -> this process's examples (see module doc).

  Picklable (grain workers); it keeps the permutations of the current and
  the previous epoch.

  Attributes:
    indices: int64 ``[M]``, the training examples ``R`` (positions in the
      train split).
    seed: data seed.
    steps: ``S``, training steps per epoch.
  """

  def __init__(self, num_examples: int, *, batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1,
               validation_fraction: float = 0.0, name: str = "the split"):
    """Orders the training examples of a train split.

    Args:
      num_examples: ``N``, the size of the whole train split (validation
        examples included).
      batch_size: per-process batch size ``B``.
      seed: data seed.
      process_index: this process's index ``p``.
      process_count: number of processes ``P``.
      validation_fraction: fraction of the train split held out (see
        :func:`split_indices`); its examples are never returned.
      name: the dataset, as named in errors.

    Raises:
      ValueError: a bad argument, or fewer training examples than ``B * P``.
    """
    check_process(process_index, process_count)
    self.indices, val_idx = split_indices(num_examples, validation_fraction)
    self.steps = _steps(len(self.indices), batch_size, process_count, name,
                        len(val_idx), validation_fraction)
    self.seed, self._b = seed, batch_size
    self._pi, self._pc = process_index, process_count
    self._perms: dict[int, np.ndarray] = {}

  def __getstate__(self):
    return {**self.__dict__, "_perms": {}}

  def _perm(self, epoch: int) -> np.ndarray:
    perm = self._perms.get(epoch)
    if perm is None:
      perm = epoch_permutation(len(self.indices), self.seed, epoch)
      self._perms = {epoch: perm, **{k: v for k, v in self._perms.items()
                                     if k == epoch - 1}}
    return perm

  def __call__(self, step: int) -> tuple[int, np.ndarray]:
    """``(epoch, int64 [B] positions in the train split)`` of ``step``."""
    epoch, b = divmod(int(step), self.steps)
    start = (b * self._pc + self._pi) * self._b
    return epoch, self.indices[self._perm(epoch)[start:start + self._b]]


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
  order = TrainOrder(num_examples, batch_size=batch_size, seed=seed,
                     process_index=process_index,
                     process_count=process_count,
                     validation_fraction=validation_fraction)
  return order(step)[1]


class EvalOrder:
  """Eval batch number -> this process's examples (see module doc).

  Attributes:
    indices: int64 ``[n]``, the examples of the pass: positions in the
      stored test split (``split="test"``) or train split (otherwise).
    num_batches: batches of the pass, the same for every process.
  """

  def __init__(self, split: str, num_stored: int, *, batch_size: int,
               process_index: int = 0, process_count: int = 1,
               validation_fraction: float = 0.0):
    """Orders one pass over ``split``.

    Args:
      split: ``"test"``, ``"validation"`` or ``"train"`` (the training
        examples left after holding out the validation examples).
      num_stored: size of the stored split read: the test split for
        ``"test"``, else the train split.
      batch_size: per-process batch size ``B``.
      process_index: this process's index ``p``.
      process_count: number of processes ``P``.
      validation_fraction: fraction of the train split held out (see
        :func:`split_indices`); only checked for ``"test"``.
    """
    check_process(process_index, process_count)
    check_positive("batch_size", batch_size)
    check_split(split, validation_fraction)
    if split == "test":
      self.indices = np.arange(num_stored, dtype=np.int64)
    else:
      self.indices = split_indices(num_stored, validation_fraction)[
          split == "validation"]
    self.num_batches = _num_batches(len(self.indices), batch_size,
                                    process_count)
    self._b, self._pi, self._pc = batch_size, process_index, process_count

  def __call__(self, batch: int) -> np.ndarray:
    """int64 ``[<= B]`` positions of eval batch ``batch`` (short at the end)."""
    start = (int(batch) * self._pc + self._pi) * self._b
    return self.indices[start:start + self._b]
