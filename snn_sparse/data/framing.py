"""Event streams to frames, and resizing of frames, in vectorised numpy.

:func:`events_to_frames` integrates events into ``T`` per-polarity count
frames ``[T, H, W, 2]`` with SpikingJelly's semantics (so frames compare with
the literature). For ``N`` events in file order:

* ``split_by="number"``: ``di = N // T``; frame ``j`` holds events
  ``[j * di, (j + 1) * di)``, and the last frame runs to ``N`` (it also takes
  the remainder ``N % T``, and all events when ``N < T``);
* ``split_by="time"``: ``dt = (t[-1] - t[0]) // T``; frame ``j`` holds the
  events with ``t0 + j * dt <= t < t0 + (j + 1) * dt``, and the last frame
  runs to the end, inclusive (all events when ``dt == 0``). Events are
  assigned by timestamp value; timestamps before ``t[0]`` go to frame 0.

Channel 0 counts polarity 0 and channel 1 polarity 1.

:func:`resize_frames` resizes ``[..., H, W, C]`` frames with a separable
linear map: ``"bilinear"`` reproduces PyTorch's
``F.interpolate(mode="bilinear", align_corners=False, antialias=False)``
(the common recipe for 48x48 CIFAR10-DVS); ``"area"`` averages over the
covered input area (``mode="area"``, i.e. adaptive average pooling).
:func:`sum_pool_frames` bins counts into coarser pixels exactly.
"""

from __future__ import annotations

import numpy as np

SPLIT_MODES = ("number", "time")
RESIZE_METHODS = ("bilinear", "area")


def frame_index(t: np.ndarray, n_frames: int, split_by: str) -> np.ndarray:
  """The frame of each event: int64 ``[N]`` in ``0..n_frames - 1``.

  Args:
    t: timestamps ``[N]`` in file order (only used by ``"time"``).
    n_frames: ``T``.
    split_by: ``"number"`` or ``"time"`` (see the module docstring).
  """
  if split_by not in SPLIT_MODES:
    raise ValueError(f"split_by must be one of {SPLIT_MODES}, got "
                     f"{split_by!r}.")
  if not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
    raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}.")
  n = len(t)
  last = n_frames - 1
  if n == 0:
    return np.zeros(0, np.int64)
  if split_by == "number":
    di = n // n_frames
    if di == 0:
      return np.full(n, last, np.int64)
    return np.minimum(np.arange(n, dtype=np.int64) // di, last)
  t = np.asarray(t, np.int64)
  dt = (int(t[-1]) - int(t[0])) // n_frames
  if dt <= 0:
    return np.full(n, last, np.int64)
  return np.clip((t - t[0]) // dt, 0, last)


def events_to_frames(events: np.ndarray, sensor_size: tuple[int, int],
                     n_frames: int, split_by: str = "number",
                     dtype=np.float32) -> np.ndarray:
  """Per-polarity event counts in ``n_frames`` slices.

  Args:
    events: structured events ``[N]`` with fields ``t``, ``x``, ``y``, ``p``
      (see ``snn_sparse.data.events``), in file order.
    sensor_size: ``(width, height)`` of the sensor; ``0 <= x < width``,
      ``0 <= y < height``.
    n_frames: ``T``.
    split_by: ``"number"`` (equal event counts) or ``"time"`` (equal time
      windows); see the module docstring for the exact slices.
    dtype: output dtype; counts are computed in int64 and then cast.

  Returns:
    ``[T, H, W, 2]`` counts; ``[j, y, x, p]`` is the number of events of
    frame ``j`` at pixel ``(x, y)`` with polarity ``p``.

  Raises:
    ValueError: an event lies outside the sensor or has a polarity other
      than 0 or 1.
  """
  width, height = (int(s) for s in sensor_size)
  frame = frame_index(events["t"], n_frames, split_by)
  x = events["x"].astype(np.int64)
  y = events["y"].astype(np.int64)
  p = events["p"].astype(np.int64)
  if len(x):
    bad = (x < 0) | (x >= width) | (y < 0) | (y >= height) | (p < 0) | (p > 1)
    if bad.any():
      i = int(np.argmax(bad))
      raise ValueError(
          f"Event {i} (x={x[i]}, y={y[i]}, p={p[i]}) lies outside the "
          f"{width}x{height} sensor or has a polarity other than 0/1.")
  flat = ((frame * height + y) * width + x) * 2 + p
  counts = np.bincount(flat, minlength=n_frames * height * width * 2)
  return counts.reshape(n_frames, height, width, 2).astype(dtype, copy=False)


def resize_matrix(in_size: int, out_size: int, method: str = "bilinear"
                  ) -> np.ndarray:
  """The linear map of a 1-D resize: float64 ``[out_size, in_size]``.

  ``"bilinear"``: output ``i`` samples the input at ``(i + 0.5) * in / out -
  0.5`` (clamped at 0), interpolating between its two neighbours, exactly
  as PyTorch's ``align_corners=False`` without antialiasing. ``"area"``:
  output ``i`` is the mean of input ``[floor(i * in / out), ceil((i + 1) *
  in / out))``, as PyTorch's ``mode="area"``.
  """
  if method not in RESIZE_METHODS:
    raise ValueError(f"method must be one of {RESIZE_METHODS}, got "
                     f"{method!r}.")
  out = np.zeros((out_size, in_size))
  rows = np.arange(out_size)
  if method == "bilinear":
    src = np.maximum((rows + 0.5) * (in_size / out_size) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = src - lo
    np.add.at(out, (rows, lo), 1.0 - frac)
    np.add.at(out, (rows, hi), frac)
    return out
  start = (rows * in_size) // out_size
  stop = -((-(rows + 1) * in_size) // out_size)
  for i, (a, b) in enumerate(zip(start, stop)):
    out[i, a:b] = 1.0 / (b - a)
  return out


def resize_frames(frames: np.ndarray, size: tuple[int, int],
                  method: str = "bilinear") -> np.ndarray:
  """Resizes frames ``[..., H, W, C]`` to ``[..., h, w, C]``, float32.

  Args:
    frames: any leading axes, then ``H, W, C``.
    size: ``(h, w)``.
    method: ``"bilinear"`` or ``"area"`` (see :func:`resize_matrix`).
  """
  *_, height, width, _ = frames.shape
  ry = resize_matrix(height, size[0], method).astype(np.float32)
  rx = resize_matrix(width, size[1], method).astype(np.float32)
  x = np.asarray(frames, np.float32)
  return np.einsum("ih,...hwc,jw->...ijc", ry, x, rx, optimize=True)


def sum_pool_frames(frames: np.ndarray, factor: int) -> np.ndarray:
  """Sums ``f`` x ``f`` pixel blocks: ``[..., H, W, C] -> [..., H/f, W/f, C]``.

  The same as binning events at ``x // factor, y // factor``; counts stay
  exact. ``H`` and ``W`` must be multiples of ``f = factor``.
  """
  *lead, height, width, c = frames.shape
  if height % factor or width % factor:
    raise ValueError(f"Frames {height}x{width} are not a multiple of the "
                     f"pooling factor {factor}.")
  x = frames.reshape(*lead, height // factor, factor, width // factor,
                     factor, c)
  return x.sum(axis=(-4, -2))
