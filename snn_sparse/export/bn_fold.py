"""BatchNorm (eval mode) folded into the conv or dense layer before it.

In eval mode BatchNorm is the per-channel affine map
``y = (x - mean) * scale / sqrt(var + eps) + bias`` (Flax's ``BatchNorm``
with ``use_running_average=True``). After a layer ``x = W * u`` (no bias),
it equals one layer with

    W'[..., o] = W[..., o] * g[o],   b'[o] = bias[o] - mean[o] * g[o],
    g[o] = scale[o] / sqrt(var[o] + eps)

(``o`` the output channel, the last axis of a Flax kernel). Masked weights
stay exactly 0.
"""

from __future__ import annotations

import numpy as np


def fold_batchnorm(kernel, scale, bias, mean, var, eps: float = 1e-5):
  """Folds eval-mode BatchNorm into the bias-free layer ``kernel``.

  Args:
    kernel: ``[..., out]`` (a Flax conv ``[kh, kw, in, out]`` or dense
      ``[in, out]`` kernel).
    scale, bias, mean, var: ``[out]``, the BatchNorm's parameters and
      running statistics.
    eps: the BatchNorm's epsilon (``layers.TimeBatchNorm.epsilon``).

  Returns:
    ``(kernel', bias')`` float32, ``[..., out]`` and ``[out]``, computed in
    float64 and rounded once.
  """
  w = np.asarray(kernel, np.float64)
  g = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64)
                                              + eps)
  b = np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * g
  return (w * g).astype(np.float32), b.astype(np.float32)
