r"""Where a ResNet19 train step spends its time: each conv shape, each pass.

  python -m experiments.conv_profile --batch_size 32 --time_steps 2

For every distinct convolution of ResNet19 on 32x32 input (at N = T * batch
size), it times the forward conv, the input gradient and the weight gradient
(XLA's conv and ``snn_sparse.platform.conv_cpu``'s per-tap matmuls) separately, jitted,
median of ``--repeats``, on spike inputs with 15% ones. It prints one row per
shape with the count of such layers in the model and the totals, i.e. how
much of the step the convolutions explain.
"""

from __future__ import annotations

import statistics
import time

from absl import app, flags
import jax
from jax import lax
import jax.numpy as jnp

from snn_sparse.platform import conv_cpu

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("time_steps", 2, "Simulation steps T.")
flags.DEFINE_integer("repeats", 5, "Timed calls per measurement (median).")

# (H=W of the input, Cin, Cout, kernel, stride, number of such layers).
RESNET19_CONVS = (
    (32, 3, 128, 3, 1, 1),
    (32, 128, 128, 3, 1, 6),
    (32, 128, 256, 3, 2, 1),
    (32, 128, 256, 1, 2, 1),
    (16, 256, 256, 3, 1, 5),
    (16, 256, 512, 3, 2, 1),
    (16, 256, 512, 1, 2, 1),
    (8, 512, 512, 3, 1, 3),
)
DN = ("NHWC", "HWIO", "NHWC")


def _median_ms(fn, *args, repeats):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def profile(n: int, repeats: int) -> list[dict]:
  """Times the passes of every ResNet19 conv shape at batch ``n``."""
  rows = []
  for size, cin, cout, k, stride, count in RESNET19_CONVS:
    pad = ((k // 2, k // 2),) * 2
    x = (jax.random.uniform(jax.random.key(0), (n, size, size, cin))
         < 0.15).astype(jnp.float32)
    w = jax.random.normal(jax.random.key(1), (k, k, cin, cout)) * 0.05
    conv = lambda x, w: lax.conv_general_dilated(
        x, w, (stride, stride), pad, dimension_numbers=DN)
    y = conv(x, w)
    dy = jax.random.normal(jax.random.key(2), y.shape)
    fwd = jax.jit(conv)
    dx = jax.jit(lambda x, w, dy: jax.vjp(lambda x: conv(x, w), x)[1](dy)[0])
    dw = jax.jit(lambda x, w, dy: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0])
    dw_mm = jax.jit(lambda x, dy: conv_cpu.weight_gradient(
        x, dy, w.shape, (stride, stride), pad))
    gflop = 2 * y.size * k * k * cin / 1e9
    row = {"shape": f"{size}x{size} {cin}->{cout} k{k} s{stride}",
           "count": count, "gflop": gflop,
           "fwd_ms": _median_ms(fwd, x, w, repeats=repeats),
           "dx_ms": _median_ms(dx, x, w, dy, repeats=repeats),
           "dw_xla_ms": _median_ms(dw, x, w, dy, repeats=repeats),
           "dw_matmul_ms": _median_ms(dw_mm, x, dy, repeats=repeats)}
    rows.append(row)
    print(f"{row['shape']:>24} x{count}  {gflop:6.2f} GFLOP  fwd "
          f"{row['fwd_ms']:7.1f}  dx {row['dx_ms']:7.1f}  dW xla "
          f"{row['dw_xla_ms']:7.1f}  dW matmul {row['dw_matmul_ms']:7.1f} ms",
          flush=True)
  totals = {key: sum(r[key] * r["count"] for r in rows)
            for key in ("fwd_ms", "dx_ms", "dw_xla_ms", "dw_matmul_ms")}
  print("totals over the model (ms): " + ", ".join(
      f"{k[:-3]} {v:.0f}" for k, v in totals.items()))
  return rows


def main(argv):
  del argv
  profile(FLAGS.batch_size * FLAGS.time_steps, FLAGS.repeats)


if __name__ == "__main__":
  app.run(main)
