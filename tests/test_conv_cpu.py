"""The per-tap matmul weight gradient equals XLA's convolution gradients."""

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse import layers, losses, models
from snn_sparse.platform import conv_cpu

DN = ("NHWC", "HWIO", "NHWC")

# (input [N, H, W, Cin], kernel size, Cout, stride, padding)
CASES = {
    "3x3_s1": ((2, 9, 9, 8), 3, 16, 1, ((1, 1), (1, 1))),
    "3x3_s2": ((2, 9, 9, 24), 3, 8, 2, ((1, 1), (1, 1))),
    "3x3_s2_even": ((2, 8, 8, 24), 3, 8, 2, ((1, 1), (1, 1))),
    "1x1_s1": ((2, 6, 6, 32), 1, 16, 1, ((0, 0), (0, 0))),
    "1x1_s2": ((2, 7, 7, 32), 1, 16, 2, ((0, 0), (0, 0))),
    "3x3_narrow_valid": ((3, 7, 5, 3), 3, 8, 1, ((0, 0), (0, 0))),
    "3x3_asymmetric": ((1, 6, 7, 20), 3, 4, 2, ((0, 1), (1, 0))),
    "3x3_wide": ((1, 5, 5, 72), 3, 8, 1, ((1, 1), (1, 1))),
    "3x3_wide_s2": ((1, 6, 6, 130), 3, 4, 2, ((1, 1), (1, 1))),
}


def test_cases_cover_both_tap_matmul_forms():
  forms = {conv_cpu._narrow_form(shape[-1], shape[1], shape[2])
           for shape, *_ in CASES.values()}
  assert forms == {True, False}
  assert conv_cpu._narrow_form(32, 14, 14)  # the convnet's second conv
  assert conv_cpu._narrow_form(64, 48, 48)  # VGGSNN's second conv
  assert not conv_cpu._narrow_form(64, 14, 14)
  assert not conv_cpu._narrow_form(128, 32, 32)  # ResNet19


def _spikes_and_kernel(shape, k, cout, seed=0):
  kx, kw = jax.random.split(jax.random.key(seed))
  x = (jax.random.uniform(kx, shape) < 0.2).astype(jnp.float32)
  w = jax.random.normal(kw, (k, k, shape[-1], cout)) * 0.3
  return x, w


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_and_gradients_match_xla(case):
  shape, k, cout, stride, padding = CASES[case]
  x, w = _spikes_and_kernel(shape, k, cout)
  x = x + 0.5 * jax.random.normal(jax.random.key(5), shape)  # also analog

  def loss(fn, x, w):
    y = fn(x, w, (stride, stride), padding, dimension_numbers=DN)
    return jnp.sum(jnp.sin(y)), y

  ref_grad = jax.jit(jax.grad(lambda x, w: loss(lax.conv_general_dilated,
                                                x, w)[0], argnums=(0, 1)))
  new_grad = jax.jit(jax.grad(lambda x, w: loss(conv_cpu.conv_general_dilated,
                                                x, w)[0], argnums=(0, 1)))
  np.testing.assert_array_equal(
      loss(conv_cpu.conv_general_dilated, x, w)[1],
      loss(lax.conv_general_dilated, x, w)[1])
  for ref, new in zip(ref_grad(x, w), new_grad(x, w)):
    np.testing.assert_allclose(new, ref, rtol=1e-4, atol=1e-4)


def test_weight_gradient_by_hand():
  # 1x3x3x1 input, 2x2 kernel, no padding: dW[i, j] = sum over outputs of
  # x[h + i, w + j] * dy[h, w].
  x = jnp.arange(9.0).reshape(1, 3, 3, 1)
  dy = jnp.array([[1.0, 0.0], [0.0, 2.0]]).reshape(1, 2, 2, 1)
  dw = conv_cpu.weight_gradient(x, dy, (2, 2, 1, 1), (1, 1), ((0, 0), (0, 0)))
  expected = [[0 * 1 + 4 * 2, 1 * 1 + 5 * 2], [3 * 1 + 7 * 2, 4 * 1 + 8 * 2]]
  np.testing.assert_allclose(dw[..., 0, 0], expected)


def test_unsupported_calls_fall_back_to_xla():
  x, w = _spikes_and_kernel((1, 8, 8, 4), 3, 4)
  kw = dict(dimension_numbers=DN, rhs_dilation=(2, 2))
  np.testing.assert_array_equal(
      conv_cpu.conv_general_dilated(x, w, (1, 1), "SAME", **kw),
      lax.conv_general_dilated(x, w, (1, 1), "SAME", **kw))


def test_get_conv_fn_and_auto_selection():
  assert conv_cpu.get_conv_fn("xla") is lax.conv_general_dilated
  assert conv_cpu.get_conv_fn("matmul_wgrad") is conv_cpu.conv_general_dilated
  with pytest.raises(ValueError, match="Unknown conv_impl 'mkl'"):
    conv_cpu.get_conv_fn("mkl")
  # On CPU, "auto" takes the custom VJP: its jaxpr holds a custom_vjp_call.
  x, w = _spikes_and_kernel((1, 4, 4, 2), 3, 2)
  jaxpr = str(jax.make_jaxpr(lambda x, w: conv_cpu.auto_conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=DN))(x, w))
  assert ("custom_vjp" in jaxpr) == (jax.default_backend() == "cpu")


def test_conv_layer_both_paths_same_params_values_and_gradients():
  x, _ = _spikes_and_kernel((2, 8, 8, 6), 3, 1)
  fast = layers.Conv(12, (3, 3), strides=(2, 2), padding=1, use_bias=False,
                     conv_general_dilated=conv_cpu.get_conv_fn("matmul_wgrad"))
  native = fast.clone(conv_general_dilated=conv_cpu.get_conv_fn("xla"))
  params = fast.init(jax.random.key(0), x)
  assert jax.tree.structure(params) == jax.tree.structure(
      native.init(jax.random.key(0), x))
  grads = [jax.grad(lambda p, m=m: jnp.sum(m.apply(p, x) ** 2))(params)
           for m in (fast, native)]
  np.testing.assert_array_equal(fast.apply(params, x), native.apply(params, x))
  np.testing.assert_allclose(grads[0]["params"]["kernel"],
                             grads[1]["params"]["kernel"], rtol=1e-5,
                             atol=1e-5)
  # The SOP count does not depend on the path.
  _, a = fast.apply(params, x, mutable=["intermediates"])
  _, b = native.apply(params, x, mutable=["intermediates"])
  np.testing.assert_array_equal(a["intermediates"]["sops"][0],
                                b["intermediates"]["sops"][0])


def test_small_resnet19_both_paths_same_loss_and_gradients():
  x = jax.random.uniform(jax.random.key(3), (2, 2, 8, 8, 3)) * 3.0
  labels = jnp.array([1, 7])
  kw = dict(stem_width=8, stage_widths=(8, 16, 16), stage_sizes=(1, 1, 1),
            hidden=16)
  fast = models.create("resnet19", conv_impl="matmul_wgrad", **kw)
  native = models.create("resnet19", conv_impl="xla", **kw)
  variables = fast.init(jax.random.key(0), x, train=False)

  def loss_and_grad(model):
    def loss_fn(params):
      logits, _ = model.apply({**variables, "params": params}, x, train=True,
                              mutable=["batch_stats"])
      return losses.mean_cross_entropy(logits, labels)
    return jax.jit(jax.value_and_grad(loss_fn))(variables["params"])

  (loss_a, grads_a), (loss_b, grads_b) = map(loss_and_grad, (fast, native))
  np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
