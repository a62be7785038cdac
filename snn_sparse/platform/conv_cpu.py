"""A 2D convolution whose weight gradient is a sum of per-tap matmuls (for CPU).

On XLA CPU the forward convolution and the input gradient run close to the
speed of a tuned BLAS, but the weight-gradient convolution does not (several
times slower on the 32x32x128 layers of ResNet19). :func:`conv_general_dilated`
is a drop-in for ``jax.lax.conv_general_dilated`` (NHWC input, HWIO kernel)
with a custom VJP:

- forward: XLA's convolution;
- input gradient: XLA's (transposed) convolution;
- weight gradient: for each of the ``kh * kw`` taps ``(i, j)``, the strided
  window of the padded input that tap sees, ``X_ij`` ``[N, Ho, Wo, Cin]``, is
  contracted with the output gradient ``dY`` ``[N, Ho, Wo, Cout]`` over all
  ``N * Ho * Wo`` positions: ``dW[i, j] = X_ij^T @ dY``, one large matmul
  per tap, with no im2col buffer. The taps run in a ``lax.scan`` so that only
  one window ``X_ij`` exists at a time.

Calls the custom path does not cover (dilation, feature groups, other
layouts, negative padding) fall back to XLA's convolution unchanged.

:func:`get_conv_fn` picks an implementation by name: ``"auto"`` (the custom
weight gradient on the CPU backend, XLA's native convolution on GPU/TPU),
``"matmul_wgrad"`` (always the custom weight gradient) or ``"xla"`` (always
native).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
from jax import lax
import jax.numpy as jnp

CONV_IMPLS = ("auto", "matmul_wgrad", "xla")

# NHWC input, HWIO kernel, NHWC output, as Flax builds them for 2D convs.
_LHS_SPEC = (0, 3, 1, 2)
_RHS_SPEC = (3, 2, 0, 1)
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def _narrow_form(cin: int, ho: int, wo: int) -> bool:
  """Whether the tap matmul runs as ``X_ij^T @ dY`` (else ``dY^T @ X_ij``).

  Measured per shape on XLA CPU (``python -m experiments.conv_profile``):
  with few input channels ``X_ij^T @ dY`` is up to 1.6x faster (the
  convnet's 32->64 conv at 14x14: 51 ms against 81 ms at T*B = 512;
  VGGSNN's 64->128 conv at 48x48: 1.42x), with 128 or more the other form
  is (ResNet19's 128->128 at 32x32: 1.13x).
  """
  return cin <= 32 or (cin <= 64 and ho * wo >= 1024)


def _xla_conv(x, w, strides, padding, precision):
  return lax.conv_general_dilated(
      x, w, strides, padding, dimension_numbers=_DIMENSION_NUMBERS,
      precision=precision)


def weight_gradient(x: jax.Array, dy: jax.Array, kernel_shape: Sequence[int],
                    strides: tuple[int, int],
                    padding: tuple[tuple[int, int], tuple[int, int]],
                    precision: Any = None) -> jax.Array:
  """``dL/dW`` ``[kh, kw, Cin, Cout]`` of a 2D conv, as one matmul per tap.

  Args:
    x: conv input, ``[N, H, W, Cin]``.
    dy: gradient of the conv output, ``[N, Ho, Wo, Cout]``.
    kernel_shape: ``(kh, kw, Cin, Cout)``.
    strides: ``(sh, sw)``.
    padding: ``((top, bottom), (left, right))``, non-negative.
    precision: matmul precision (``None``: the backend default).

  Returns:
    The weight gradient, accumulated in float32 and cast to ``x.dtype``.
  """
  kh, kw, cin, cout = kernel_shape
  n, ho, wo, _ = dy.shape
  sh, sw = strides
  (pt, pb), (pl, pr) = padding
  if pt or pb or pl or pr:
    x = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  m = n * ho * wo
  narrow = _narrow_form(cin, ho, wo)
  if narrow:
    dy2 = dy.reshape(m, cout)
  else:
    # dY^T [Cout, M], materialised once (the barrier stops XLA from folding
    # the transpose into every tap's dot, which runs a slower kernel), so
    # each tap is a plain [Cout, M] @ [M, Cin] product.
    dy2 = lax.optimization_barrier(dy.reshape(m, cout).T)
  span = (n, sh * (ho - 1) + 1, sw * (wo - 1) + 1, cin)

  def tap(_, index):
    # A loop over taps (not a Python loop) keeps one window alive at a time:
    # unrolled, XLA materialises all kh*kw windows at once.
    i, j = index // kw, index % kw
    window = lax.dynamic_slice(x, (0, i, j, 0), span)
    if sh > 1 or sw > 1:
      window = window[:, ::sh, ::sw]
    window = window.reshape(m, cin)
    if narrow:  # [M, Cin]^T @ [M, Cout]
      return None, lax.dot_general(
          window, dy2, (((0,), (0,)), ((), ())), precision=precision,
          preferred_element_type=jnp.float32)
    return None, lax.dot_general(  # [Cout, M] @ [M, Cin]
        dy2, window, (((1,), (0,)), ((), ())), precision=precision,
        preferred_element_type=jnp.float32)

  _, taps = lax.scan(tap, None, jnp.arange(kh * kw))
  if narrow:
    dw = taps.reshape(kh, kw, cin, cout)
  else:
    dw = jnp.transpose(taps.reshape(kh, kw, cout, cin), (0, 1, 3, 2))
  return dw.astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, w, strides, padding, precision):
  return _xla_conv(x, w, strides, padding, precision)


def _conv_fwd(x, w, strides, padding, precision):
  return _xla_conv(x, w, strides, padding, precision), (x, w)


def _conv_bwd(strides, padding, precision, residuals, dy):
  x, w = residuals
  _, input_vjp = jax.vjp(
      lambda x_: _xla_conv(x_, w, strides, padding, precision), x)
  (dx,) = input_vjp(dy)
  dw = weight_gradient(x, dy, w.shape, strides, padding, precision)
  return dx, dw.astype(w.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def _specs(dimension_numbers):
  if dimension_numbers is None:
    return None
  if isinstance(dimension_numbers, lax.ConvDimensionNumbers):
    return (tuple(dimension_numbers.lhs_spec),
            tuple(dimension_numbers.rhs_spec),
            tuple(dimension_numbers.out_spec))
  if tuple(dimension_numbers) == _DIMENSION_NUMBERS:
    return (_LHS_SPEC, _RHS_SPEC, _LHS_SPEC)
  return None


def _is_ones(values) -> bool:
  return values is None or all(int(v) == 1 for v in values)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None,
                         feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
  """``lax.conv_general_dilated`` with the per-tap matmul weight gradient.

  Same signature and forward result. The custom gradient applies to 2D
  NHWC/HWIO convolutions without dilation or feature groups; any other call
  is passed to ``lax.conv_general_dilated`` unchanged.
  """
  specs = _specs(dimension_numbers)
  if (lhs.ndim != 4 or specs != (_LHS_SPEC, _RHS_SPEC, _LHS_SPEC)
      or not _is_ones(lhs_dilation) or not _is_ones(rhs_dilation)
      or feature_group_count != 1 or batch_group_count != 1
      or preferred_element_type is not None):
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, precision=precision,
        preferred_element_type=preferred_element_type)
  strides = tuple(int(s) for s in window_strides)
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides,
                                  padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  if any(p < 0 for pair in padding for p in pair):
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, dimension_numbers=dimension_numbers,
        precision=precision)
  return _conv(lhs, rhs, strides, padding, precision)


def auto_conv_general_dilated(*args, **kwargs):
  """The per-tap weight gradient on the CPU backend, XLA's conv elsewhere."""
  if jax.default_backend() == "cpu":
    return conv_general_dilated(*args, **kwargs)
  return lax.conv_general_dilated(*args, **kwargs)


def get_conv_fn(impl: str) -> Callable:
  """The conv function for ``impl`` in ``CONV_IMPLS`` (see the module doc)."""
  fns = {"auto": auto_conv_general_dilated,
         "matmul_wgrad": conv_general_dilated,
         "xla": lax.conv_general_dilated}
  if impl not in fns:
    raise ValueError(
        f"Unknown conv_impl {impl!r}; choose one of {CONV_IMPLS}.")
  return fns[impl]
