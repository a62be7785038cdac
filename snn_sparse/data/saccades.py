"""Event-camera emulation of static images by N-MNIST-style saccades.

N-MNIST was recorded by moving an event camera in front of a screen along
three short saccades that form a triangle. :func:`saccade_events` emulates
that for a static grey image, deterministically:

1. The image ``I`` (values in ``[0, 1]``) is moved along the closed triangle
   ``(-a/2, -a/2) -> (-a/2, +a/2) -> (+a/2, 0) -> (-a/2, -a/2)`` (``(dy,
   dx)`` in pixels, ``a = amplitude``), in ``steps_per_saccade`` equal steps
   per side, with bilinear sub-pixel shifts and black (0) outside the image.
   The first saccade is horizontal and the other two diagonal, so edges of
   every orientation produce events.
2. Each pixel sees the log intensity ``L = log(I + log_eps)`` and keeps a
   reference level, initially ``L`` at the start position. After each step
   the pixel emits ``n = floor(|L - ref| / C)`` events of polarity 1 (ON,
   brighter) or 0 (OFF, darker) and moves its reference by ``n * C`` towards
   ``L``, like a DVS pixel.
3. ``C`` is ``threshold`` times a per-pixel mismatch factor ``1 + sigma *
   z`` (``z`` standard normal, clipped to ``[0.5, 1.5]``), drawn from
   ``np.random.default_rng([seed, index])``: fixed per example.
4. All events of step ``k`` (1-based) get timestamp ``k * saccade_us /
   steps_per_saccade`` µs, ordered by row, then column.
"""

from __future__ import annotations

import numpy as np

from snn_sparse.data import events as events_lib


def saccade_path(amplitude: float, steps_per_saccade: int) -> np.ndarray:
  """Image offsets along the three saccades: float64 ``[3 * S + 1, 2]``.

  Row ``k`` is the ``(dy, dx)`` shift after step ``k``; row 0 is the start.
  """
  half = amplitude / 2.0
  corners = np.array([[-half, -half], [-half, half], [half, 0.0],
                      [-half, -half]])
  s = np.arange(steps_per_saccade) / steps_per_saccade
  path = [corners[i] + s[:, None] * (corners[i + 1] - corners[i])
          for i in range(3)]
  return np.concatenate([*path, corners[-1:]])


def shift_matrix(size: int, shift: float) -> np.ndarray:
  """``M [size, size]``: ``(M @ v)[i] = v(i - shift)``, bilinear, 0 outside."""
  src = np.arange(size) - shift
  lo = np.floor(src).astype(np.int64)
  frac = src - lo
  m = np.zeros((size, size))
  for offset, weight in ((0, 1.0 - frac), (1, frac)):
    j = lo + offset
    ok = (j >= 0) & (j < size)
    np.add.at(m, (np.arange(size)[ok], j[ok]), weight[ok])
  return m


def saccade_events(image: np.ndarray, *, index: int = 0, seed: int = 0,
                   amplitude: float = 2.0, steps_per_saccade: int = 8,
                   threshold: float = 0.2, sigma: float = 0.05,
                   log_eps: float = 0.1, saccade_us: int = 100_000
                   ) -> np.ndarray:
  """Emulated events of a static image (see the module docstring).

  Args:
    image: ``[H, W]`` intensities in ``[0, 1]``.
    index: the example's index, part of its mismatch seed.
    seed: the dataset's emulation seed.
    amplitude: side of the saccade triangle in pixels.
    steps_per_saccade: motion steps per saccade ``S``.
    threshold: contrast threshold ``C`` of log intensity.
    sigma: relative per-pixel mismatch of ``C``.
    log_eps: offset inside the log, so black pixels have finite ``L``.
    saccade_us: duration of one saccade in µs.

  Returns:
    Events ``[N]`` (``snn_sparse.data.events.EVENT_DTYPE``), time-ordered,
    on a ``W x H`` sensor.
  """
  image = np.asarray(image, np.float64)
  h, w = image.shape
  path = saccade_path(amplitude, steps_per_saccade)
  scenes = np.stack([shift_matrix(h, dy) @ image @ shift_matrix(w, dx).T
                     for dy, dx in path])
  log_i = np.log(np.clip(scenes, 0.0, None) + log_eps)
  rng = np.random.default_rng([seed, index])
  c = threshold * np.clip(1.0 + sigma * rng.standard_normal((h, w)), 0.5, 1.5)
  ref = log_i[0].copy()
  counts = np.zeros((len(path) - 1, h, w), np.int64)
  for k in range(1, len(path)):
    diff = log_i[k] - ref
    n = np.floor(np.abs(diff) / c).astype(np.int64)
    ref += np.sign(diff) * n * c
    counts[k - 1] = np.where(diff > 0, n, -n)
  step, y, x = np.nonzero(counts)
  n = np.abs(counts[step, y, x])
  t = (step + 1) * saccade_us // steps_per_saccade
  return events_lib.make_events(np.repeat(t, n), np.repeat(x, n),
                                np.repeat(y, n),
                                np.repeat(counts[step, y, x] > 0, n))
