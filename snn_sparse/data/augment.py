"""Train-time augmentation as pure functions of ``(seed, epoch, example)``.

Every random choice (crop offsets, flip bits, roll shifts) comes from a
counter-based hash of the data seed, the epoch and the example's position in
the train split, so a batch's augmentation does not depend on what was read
before it: this is what lets a resumed run see exactly the batches of an
uninterrupted one. Everything is vectorised numpy over the batch.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
  """The splitmix64 finaliser on a uint64 array (wrap-around arithmetic)."""
  x = x ^ (x >> np.uint64(30))
  x = x * np.uint64(0xBF58476D1CE4E5B9)
  x = x ^ (x >> np.uint64(27))
  x = x * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


def example_hash(seed: int, epoch: int, indices: np.ndarray) -> np.ndarray:
  """A 64-bit pseudo-random word per example: uint64 ``[n]``.

  A pure function of ``(seed, epoch, index)``, computed vectorised.
  """
  with np.errstate(over="ignore"):
    key = np.array([seed % (1 << 64)], np.uint64)
    key = _mix64(key + _GOLDEN)
    key = _mix64(key + np.uint64(epoch % (1 << 64)) * _GOLDEN)
    idx = np.asarray(indices, np.int64).astype(np.uint64).reshape(-1)
    return _mix64(key + (idx + np.uint64(1)) * _GOLDEN)


def augmentation_params(seed: int, epoch: int, indices: np.ndarray,
                        padding: int) -> tuple[np.ndarray, np.ndarray,
                                               np.ndarray]:
  """Per-example crop offsets and flip bits.

  Args:
    seed: the run's data seed.
    epoch: the epoch number.
    indices: ``[n]`` example positions in the train split.
    padding: crop padding ``p``.

  Returns:
    ``(dy, dx, flip)``: int64 ``[n]`` offsets in ``0..2p`` into the padded
    image and bool ``[n]``.
  """
  h = example_hash(seed, epoch, indices)
  span = np.uint64(2 * padding + 1)
  dy = (h & np.uint64(0xFFFF)) % span
  dx = ((h >> np.uint64(16)) & np.uint64(0xFFFF)) % span
  flip = ((h >> np.uint64(32)) & np.uint64(1)).astype(bool)
  return dy.astype(np.int64), dx.astype(np.int64), flip


def crop_and_flip(images: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                  flip: np.ndarray, padding: int) -> np.ndarray:
  """Zero-pads, crops and optionally mirrors each image, vectorised.

  Output pixel ``[i, r, c]`` is ``padded[i, dy[i] + r, dx[i] + c']`` with
  ``c' = W - 1 - c`` where ``flip[i]`` else ``c``; ``padded`` is ``images``
  with ``padding`` zeros (black, in pixel space) on each side.

  Args:
    images: ``[B, H, W, C]``.
    dy: int ``[B]`` row offsets in ``0..2 * padding``.
    dx: int ``[B]`` column offsets in ``0..2 * padding``.
    flip: bool ``[B]``, mirror left-right after cropping.
    padding: zero padding on each side.

  Returns:
    ``[B, H, W, C]`` with the dtype of ``images``.
  """
  b, h, w, _ = images.shape
  p = int(padding)
  padded = images
  if p:
    padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
  rows = np.asarray(dy)[:, None] + np.arange(h)
  cols = np.asarray(dx)[:, None] + np.arange(w)
  cols = np.where(np.asarray(flip)[:, None], cols[:, ::-1], cols)
  return padded[np.arange(b)[:, None, None], rows[:, :, None],
                cols[:, None, :]]


def roll_params(seed: int, epoch: int, indices: np.ndarray, max_shift: int
                ) -> tuple[np.ndarray, np.ndarray]:
  """Per-example circular shifts for :func:`roll_and_flip`.

  Uses bits of :func:`example_hash` that crop offsets do not use (the flip
  bit is the one of :func:`augmentation_params`).

  Returns:
    ``(sy, sx)``: int64 ``[n]`` shifts in ``-max_shift..max_shift``.
  """
  h = example_hash(seed, epoch, indices)
  span = np.uint64(2 * max_shift + 1)
  sy = ((h >> np.uint64(33)) & np.uint64(0x7FFF)) % span
  sx = (h >> np.uint64(48)) % span
  return (sy.astype(np.int64) - max_shift, sx.astype(np.int64) - max_shift)


def roll_and_flip(images: np.ndarray, sy: np.ndarray, sx: np.ndarray,
                  flip: np.ndarray) -> np.ndarray:
  """Optionally mirrors, then circularly shifts each image, vectorised.

  Output pixel ``[i, r, c]`` is ``mirrored[i, (r - sy[i]) % H, (c - sx[i])
  % W]``, where ``mirrored`` is ``images`` flipped left-right where
  ``flip[i]`` (``torch.roll(torch.flip(x, [W]), (sy, sx), (H, W))``, the
  recipe of TET's CIFAR10-DVS loader).

  Args:
    images: ``[B, H, W, C]``.
    sy: int ``[B]`` row shifts.
    sx: int ``[B]`` column shifts.
    flip: bool ``[B]``.

  Returns:
    ``[B, H, W, C]`` with the dtype of ``images``.
  """
  b, h, w, _ = images.shape
  rows = (np.arange(h) - np.asarray(sy)[:, None]) % h
  cols = (np.arange(w) - np.asarray(sx)[:, None]) % w
  cols = np.where(np.asarray(flip)[:, None], w - 1 - cols, cols)
  return images[np.arange(b)[:, None, None], rows[:, :, None],
                cols[:, None, :]]


def augment(images: np.ndarray, *, seed: int, epoch: int,
            indices: np.ndarray, padding: int = 0, flip: bool = False,
            roll: int = 0) -> np.ndarray:
  """The train augmentation of a batch, a pure function of its arguments.

  Zero-padded random crop (``padding``), then random circular roll by up to
  ``roll`` pixels per axis, with a random horizontal flip (``flip``) in
  whichever runs last.

  Args:
    images: ``[B, H, W, C]`` images or ``[B, T, H, W, C]`` event frames (the
      same transform at every time step).
    seed, epoch, indices: the data seed, the epoch and the ``[B]`` example
      positions in the train split.
    padding: crop padding (0: no crop).
    flip: random horizontal flips.
    roll: maximal circular shift (0: no roll).

  Returns:
    The augmented batch, same shape and dtype.
  """
  if not (padding or flip or roll):
    return images
  frames = images.ndim == 5
  if frames:  # [B, T, H, W, C] -> [B, H, W, T * C]
    b, t, h, w, c = images.shape
    images = images.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * c)
  dy, dx, flips = augmentation_params(seed, epoch, indices, padding)
  flips = flips if flip else np.zeros_like(flips)
  no_flips = np.zeros_like(flips)
  if padding or not roll:  # The flip goes with the crop when nothing rolls.
    images = crop_and_flip(images, dy, dx, no_flips if roll else flips,
                           padding)
  if roll:
    sy, sx = roll_params(seed, epoch, indices, roll)
    images = roll_and_flip(images, sy, sx, flips)
  if frames:
    images = images.reshape(b, h, w, t, c).transpose(0, 3, 1, 2, 4)
  return images
