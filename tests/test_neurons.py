"""Neuron dynamics and surrogate gradients against hand-computed values."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snn_sparse import neurons

# Each case: (kwargs, input x[t], expected spikes, expected v after reset).
# Worked by hand from the equations in neurons.py's docstring (tau = 2).
LIF_CASES = {
    # H: 0.6, 0.6-0.3+0.6=0.9, 0.9-0.45+0.6=1.05 (fire, V=0), 0+1.5 (fire).
    "hard_no_decay_input": (
        dict(), [0.6, 0.6, 0.6, 1.5], [0, 0, 1, 1], [0.6, 0.9, 0.0, 0.0]),
    # H = V + (X - V)/2: 0.6, 0.9, 1.05 (fire), 1.5 (fire).
    "hard_decay_input": (
        dict(decay_input=True), [1.2, 1.2, 1.2, 3.0], [0, 0, 1, 1],
        [0.6, 0.9, 0.0, 0.0]),
    # V[-1] = -0.5. H: -0.5+1 = 0.5; 0.5-(1.0)/2+1 = 1.0 fires (heaviside(0)=1),
    # V = -0.5; -0.5-0+0.2 = -0.3.
    "hard_nonzero_reset": (
        dict(v_reset=-0.5), [1.0, 1.0, 0.2], [0, 1, 0], [0.5, -0.5, -0.3]),
    # Soft: H 0.6, 0.9, 1.05 -> V 0.05, then 0.05-0.025+1.5 = 1.525 -> 0.525.
    "soft_no_decay_input": (
        dict(v_reset=None), [0.6, 0.6, 0.6, 1.5], [0, 0, 1, 1],
        [0.6, 0.9, 0.05, 0.525]),
    # Soft, H = V + (X - V)/2: 0.6, 0.9, 1.05 -> 0.05, 0.05+2.95/2=1.525 -> 0.525.
    "soft_decay_input": (
        dict(v_reset=None, decay_input=True), [1.2, 1.2, 1.2, 3.0],
        [0, 0, 1, 1], [0.6, 0.9, 0.05, 0.525]),
    # tau = 4: H 0.6, 0.6-0.15+0.6 = 1.05 (fire), 0.6, 1.5 (fire).
    "hard_tau4": (
        dict(tau=4.0), [0.6, 0.6, 0.6, 1.5], [0, 1, 0, 1],
        [0.6, 0.0, 0.6, 0.0]),
}

IF_CASES = {
    "hard": (dict(), [0.3, 0.3, 0.5, 2.0], [0, 0, 1, 1], [0.3, 0.6, 0.0, 0.0]),
    "soft": (dict(v_reset=None), [0.3, 0.3, 0.5, 2.0], [0, 0, 1, 1],
             [0.3, 0.6, 0.1, 1.1]),
}


def _column(values):
  return jnp.asarray(values, jnp.float32)[:, None]  # [T, 1]


@pytest.mark.parametrize("case", sorted(LIF_CASES))
def test_lif_golden_trace(case):
  kwargs, x, spikes, v = LIF_CASES[case]
  s_out, v_out = neurons.lif_multistep(_column(x), return_v=True, **kwargs)
  np.testing.assert_array_equal(s_out[:, 0], spikes)
  np.testing.assert_allclose(v_out[:, 0], v, atol=1e-6)
  # return_v=False gives the spikes alone.
  np.testing.assert_array_equal(
      neurons.lif_multistep(_column(x), **kwargs)[:, 0], spikes)


@pytest.mark.parametrize("case", sorted(IF_CASES))
def test_if_golden_trace(case):
  kwargs, x, spikes, v = IF_CASES[case]
  s_out, v_out = neurons.if_multistep(_column(x), return_v=True, **kwargs)
  np.testing.assert_array_equal(s_out[:, 0], spikes)
  np.testing.assert_allclose(v_out[:, 0], v, atol=1e-6)


def test_lif_step_matches_multistep_and_keeps_shape():
  x = jax.random.normal(jax.random.key(0), (5, 3, 4, 4, 2)) + 0.5
  s = neurons.lif_multistep(x)
  assert s.shape == x.shape and s.dtype == x.dtype
  assert set(np.unique(np.asarray(s))) <= {0.0, 1.0}
  v = jnp.zeros_like(x[0])
  for t in range(x.shape[0]):
    v, s_t = neurons.lif_step(v, x[t])
    np.testing.assert_array_equal(s_t, s[t])


def test_unroll_does_not_change_results():
  x = jax.random.normal(jax.random.key(1), (6, 8)) + 0.5
  np.testing.assert_array_equal(neurons.lif_multistep(x),
                                neurons.lif_multistep(x, unroll=True))


def test_detach_reset_gradient_by_hand():
  # One step, x = 1: H = 1, S = 1, V = H * (1 - S). With the sigmoid
  # surrogate (alpha=4) at H - v_th = 0: S' = 4 * 0.5 * 0.5 = 1.
  # dV/dx = (1 - S) - H * S' = -1; detached: dV/dx = (1 - S) = 0.
  def v_last(x, detach):
    _, v = neurons.lif_multistep(x, detach_reset=detach, return_v=True)
    return v[-1, 0]

  x = jnp.array([[1.0]])
  np.testing.assert_allclose(jax.grad(v_last)(x, False)[0, 0], -1.0)
  np.testing.assert_allclose(jax.grad(v_last)(x, True)[0, 0], 0.0)


def test_soft_reset_gradient_by_hand():
  # One step, x = 1: V = H - v_th * S, dV/dx = 1 - S' = 1 - 1 = 0 (sigmoid, 4).
  # With detach_reset the reset term carries no gradient: dV/dx = 1.
  def v_last(x, detach):
    _, v = neurons.lif_multistep(x, v_reset=None, detach_reset=detach,
                                 return_v=True)
    return v[-1, 0]

  x = jnp.array([[1.0]])
  np.testing.assert_allclose(jax.grad(v_last)(x, False)[0, 0], 0.0, atol=1e-7)
  np.testing.assert_allclose(jax.grad(v_last)(x, True)[0, 0], 1.0)


# Closed forms of METHOD.md section 4, evaluated with numpy.
def _closed_form(name, x, param):
  if name == "sigmoid":
    s = 1.0 / (1.0 + np.exp(-param * x))
    return param * s * (1.0 - s)
  if name == "atan":
    return param / 2.0 / (1.0 + (math.pi / 2.0 * param * x) ** 2)
  if name == "triangle":
    return np.maximum(0.0, 1.0 / param - np.abs(x) / param**2)
  if name == "rectangle":
    return np.where(np.abs(x) < param / 2.0, 1.0 / param, 0.0)
  raise AssertionError(name)


SURROGATE_PARAMS = [("sigmoid", "alpha", 4.0), ("sigmoid", "alpha", 2.5),
                    ("atan", "alpha", 2.0), ("atan", "alpha", 3.0),
                    ("triangle", "gamma", 1.0), ("triangle", "gamma", 0.5),
                    ("rectangle", "a", 1.0), ("rectangle", "a", 0.4)]


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("name,pname,value", SURROGATE_PARAMS)
def test_surrogate_derivative_matches_closed_form(name, pname, value, use_jit):
  x = np.array([-2.0, -0.7, -0.3, -0.1, 0.0, 0.1, 0.3, 0.45, 0.7, 2.0],
               np.float32)
  fn = neurons.surrogate(name, **{pname: value})
  grad = jax.vmap(jax.grad(fn))
  if use_jit:
    grad = jax.jit(grad)
  np.testing.assert_allclose(grad(jnp.asarray(x)),
                             _closed_form(name, x, value), rtol=1e-5,
                             atol=1e-7)
  # The forward pass is the exact step, 1 at x = 0.
  np.testing.assert_array_equal(fn(jnp.asarray(x)), (x >= 0).astype(np.float32))


def test_surrogate_default_values():
  # At x = 0: sigmoid alpha/4 = 1, atan alpha/2 = 1, triangle 1/gamma = 1,
  # rectangle 1/a = 1.
  for name in neurons.SURROGATES:
    np.testing.assert_allclose(jax.grad(neurons.surrogate(name))(0.0), 1.0)


def test_surrogate_is_cached_and_validates():
  assert neurons.surrogate("atan", alpha=2.0) is neurons.surrogate("atan")
  with pytest.raises(ValueError, match="Unknown surrogate 'relu'"):
    neurons.surrogate("relu")
  with pytest.raises(ValueError, match="takes only 'alpha'"):
    neurons.surrogate("sigmoid", gamma=1.0)
  with pytest.raises(ValueError, match="must be > 0"):
    neurons.surrogate("rectangle", a=0.0)


def test_surrogate_name_or_function_give_same_gradient():
  x = jax.random.normal(jax.random.key(2), (4, 3)) + 0.8
  loss = lambda x, sg: neurons.lif_multistep(x, surrogate=sg).sum()
  np.testing.assert_allclose(
      jax.grad(loss)(x, "atan"),
      jax.grad(loss)(x, neurons.surrogate("atan", alpha=2.0)))
  assert not np.allclose(jax.grad(loss)(x, "atan"),
                         jax.grad(loss)(x, "sigmoid"))


@pytest.mark.parametrize("reset", [0.0, None])
def test_finite_difference_where_surrogate_is_silent(reset):
  # Rectangle surrogate (a=0.2) is exactly 0 for |H - v_th| >= 0.1, and no
  # potential comes near the threshold here, so autodiff must equal the true
  # derivative of the (then smooth) charge dynamics, in x and in tau.
  x = jnp.array([[0.3, -0.2], [0.2, 0.4], [0.1, 0.1]], jnp.float32)
  sg = neurons.surrogate("rectangle", a=0.2)

  def f(x, tau):
    _, v = neurons.lif_multistep(x, tau=tau, v_reset=reset, surrogate=sg,
                                 return_v=True)
    return jnp.sum(v * jnp.arange(1.0, 4.0)[:, None])

  gx, gtau = jax.grad(f, argnums=(0, 1))(x, 2.0)
  eps = 1e-3
  fd_tau = (f(x, 2.0 + eps) - f(x, 2.0 - eps)) / (2 * eps)
  np.testing.assert_allclose(gtau, fd_tau, rtol=2e-3)
  for idx in np.ndindex(x.shape):
    e = jnp.zeros_like(x).at[idx].set(eps)
    fd = (f(x + e, 2.0) - f(x - e, 2.0)) / (2 * eps)
    np.testing.assert_allclose(gx[idx], fd, rtol=2e-3)


def test_multistep_is_jittable_and_does_not_retrace():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(x, tau):
    return neurons.lif_multistep(x, tau=tau)

  for seed in range(3):
    x = jax.random.normal(jax.random.key(seed), (4, 2, 3))
    run(x, jnp.float32(2.0 + seed))


def test_rejects_scalar_input():
  with pytest.raises(ValueError, match="time-major"):
    neurons.lif_multistep(jnp.float32(1.0))
