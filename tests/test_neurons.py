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


# ---------------------------------------------------------------------------
# The functional core: multistep with state in and out, and the registry.
# ---------------------------------------------------------------------------


def _fake_param(name, init_fn, shape, dtype):
  """Stands in for Flax's ``Module.param`` outside a module."""
  del name
  return init_fn(jax.random.key(0), shape, dtype)


def _kind_params(kind, x, **fields):
  """The registered kind and its params (trained ones at their init)."""
  neuron = neurons.get(kind)
  params = neurons.NeuronParams(**fields)
  if neuron.trainable is not None:
    params = neuron.trainable(params, _fake_param, x)
  return neuron, params


CHUNK_OPTIONS = [dict(), dict(v_reset=None), dict(decay_input=True, tau=3.0),
                 dict(v_reset=-0.3, detach_reset=True, surrogate="atan")]


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("options", range(len(CHUNK_OPTIONS)))
@pytest.mark.parametrize("kind", ["lif", "if", "plif"])
def test_chunked_multistep_equals_whole_run(kind, options, use_jit):
  x = jax.random.normal(jax.random.key(5), (7, 3, 4)) + 0.6
  neuron, params = _kind_params(kind, x, **CHUNK_OPTIONS[options])

  def run(x, state):
    return neurons.multistep(neuron.step, x, state, params=params,
                             init=neuron.init)

  if use_jit:
    run = jax.jit(run)
  spikes, final = run(x, None)
  assert 0 < float(spikes.mean()) < 1  # both spikes and silence occur
  state, parts = None, []
  for lo, hi in [(0, 2), (2, 3), (3, 7)]:
    s, state = run(x[lo:hi], state)
    parts.append(s)
  np.testing.assert_array_equal(jnp.concatenate(parts), spikes)
  # Equal up to rounding: XLA compiles each chunk length on its own and may
  # simplify PLIF's division by an array tau differently (1 ulp seen).
  np.testing.assert_allclose(state, final, rtol=1e-6, atol=1e-7)
  # The final state is the last potential of the sequence.
  (s_seq, v_seq), v_last = neurons.multistep(
      neuron.step, x, params=params, init=neuron.init, return_states=True)
  np.testing.assert_array_equal(s_seq, spikes)
  np.testing.assert_array_equal(v_seq[-1], v_last)


def test_chunked_multistep_gradient_flows_through_the_state():
  x = jax.random.normal(jax.random.key(6), (6, 5)) + 0.6
  loss_whole = lambda x: neurons.multistep(neurons.lif_step, x)[0].sum()

  def loss_chunked(x):
    s1, v = neurons.multistep(neurons.lif_step, x[:3])
    s2, _ = neurons.multistep(neurons.lif_step, x[3:], v)
    return s1.sum() + s2.sum()

  np.testing.assert_allclose(jax.grad(loss_chunked)(x),
                             jax.grad(loss_whole)(x), rtol=1e-6, atol=1e-7)


def test_multistep_from_an_explicit_state_by_hand():
  # LIF, tau = 2, V[-1] = 0.8: H = 0.8 - 0.4 + 0.6 = 1.0 fires (V = 0), then
  # H = 0 + 0.3 = 0.3. From rest, 0.6 and 0.6 - 0.3 + 0.3 = 0.6 stay silent.
  x = _column([0.6, 0.3])
  spikes, v = neurons.multistep(neurons.lif_step, x, jnp.full((1,), 0.8))
  np.testing.assert_array_equal(spikes[:, 0], [1, 0])
  np.testing.assert_allclose(v, [0.3])
  spikes, v = neurons.multistep(neurons.lif_step, x)
  np.testing.assert_array_equal(spikes[:, 0], [0, 0])
  np.testing.assert_allclose(v, [0.6])
  # IF, soft reset, V[-1] = 0.5: H 0.8, 1.1 fires -> 0.1.
  p = neurons.NeuronParams(v_reset=None)
  (spikes, v_seq), v = neurons.multistep(
      neurons.if_step, _column([0.3, 0.3]), jnp.full((1,), 0.5), params=p,
      return_states=True)
  np.testing.assert_array_equal(spikes[:, 0], [0, 1])
  np.testing.assert_allclose(v_seq[:, 0], [0.8, 0.1], atol=1e-6)
  np.testing.assert_allclose(v, [0.1], atol=1e-6)


def _adaptive_step(state, x, params):
  """A two-state toy neuron: IF whose threshold rises by 0.5 per spike."""
  v, theta = state
  h = v + x
  spike = neurons.heaviside(h - params.v_threshold - theta)
  return (h * (1.0 - spike), theta + 0.5 * spike), spike


def test_multistep_carries_a_tuple_state():
  # Threshold 1 + theta. H 1.0 fires (theta 0.5), 1.0 < 1.5, 2.0 fires
  # (theta 1.0), 1.0 < 2.0.
  x = _column([1.0, 1.0, 1.0, 1.0])
  init = lambda x_t, p: (jnp.zeros_like(x_t), jnp.zeros_like(x_t))
  spikes, (v, theta) = neurons.multistep(_adaptive_step, x, init=init)
  np.testing.assert_array_equal(spikes[:, 0], [1, 0, 1, 0])
  np.testing.assert_allclose(v, [1.0])
  np.testing.assert_allclose(theta, [1.0])
  # The same in two chunks.
  s1, state = neurons.multistep(_adaptive_step, x[:2], init=init)
  s2, (v2, theta2) = neurons.multistep(_adaptive_step, x[2:], state)
  np.testing.assert_array_equal(jnp.concatenate([s1, s2]), spikes)
  np.testing.assert_array_equal(theta2, theta)


@pytest.mark.parametrize("unroll,remat", [(1, False), (True, False),
                                          (2, True)])
def test_multistep_options_do_not_change_values_or_gradients(unroll, remat):
  x = jax.random.normal(jax.random.key(7), (5, 4)) + 0.6

  def f(x, **kw):
    spikes, v = neurons.multistep(neurons.lif_step, x, **kw)
    return spikes.sum() + v.sum()

  np.testing.assert_array_equal(
      neurons.multistep(neurons.lif_step, x, unroll=unroll, remat=remat)[0],
      neurons.multistep(neurons.lif_step, x)[0])
  np.testing.assert_allclose(jax.grad(f)(x, unroll=unroll, remat=remat),
                             jax.grad(f)(x), rtol=1e-6)


def test_neuron_params_are_hashable_and_replaceable():
  p = neurons.NeuronParams(tau=4.0, v_reset=None)
  assert hash(p) == hash(neurons.NeuronParams(tau=4.0, v_reset=None))
  assert p.replace(tau=2.0) == neurons.NeuronParams(v_reset=None)
  assert p.tau == 4.0  # replace returns a copy
  with pytest.raises(TypeError):
    neurons.NeuronParams(alpha=1.0)
  # Params can be a static argument of jit. tau = 4, soft reset: H 0.6,
  # 1.05 (fires, V = 0.05), 0.6375; tau = 1: H = X; tau = 2: 0.6, 0.9, 1.05.
  run = jax.jit(lambda x, p: neurons.multistep(neurons.lif_step, x, params=p),
                static_argnums=1)
  x = _column([0.6, 0.6, 0.6])
  np.testing.assert_array_equal(run(x, p)[0][:, 0], [0, 1, 0])
  np.testing.assert_array_equal(run(x, p.replace(tau=1.0))[0][:, 0],
                                [0, 0, 0])
  np.testing.assert_array_equal(
      run(x, neurons.NeuronParams(tau=2.0))[0][:, 0], [0, 0, 1])


def test_builtin_kinds_are_registered():
  assert {"lif", "if", "plif"} <= set(neurons.names())
  assert neurons.get("lif").step is neurons.lif_step
  assert neurons.get("if").step is neurons.if_step
  assert neurons.get("plif").step is neurons.lif_step
  assert neurons.get("plif").trainable is neurons.plif_trainable
  assert neurons.get("lif").trainable is None


def test_unknown_kind_error_names_the_registered_ones():
  with pytest.raises(ValueError, match="Unknown neuron kind 'alif'") as err:
    neurons.get("alif")
  for name in neurons.names():
    assert repr(name) in str(err.value)
  assert "'lif'" in str(err.value) and "'plif'" in str(err.value)


@pytest.fixture
def clean_registry(monkeypatch):
  """Registrations made in a test are undone after it."""
  monkeypatch.setattr(neurons.registry, "_NEURONS",
                      dict(neurons.registry._NEURONS))


def _relu_step(v, x, params):
  """A toy stateless neuron: spikes where the input reaches the threshold."""
  return v, neurons.heaviside(x - params.v_threshold)


def test_register_a_neuron_from_user_code(clean_registry):
  entry = neurons.register("toy_relu", _relu_step)
  assert neurons.get("toy_relu") is entry and "toy_relu" in neurons.names()
  x = _column([0.5, 1.0, 2.0])
  spikes, _ = neurons.multistep(entry.step, x, init=entry.init)
  np.testing.assert_array_equal(spikes[:, 0], [0, 1, 1])
  with pytest.raises(ValueError, match="already registered"):
    neurons.register("toy_relu", _relu_step)
  neurons.register("toy_relu", neurons.if_step, replace=True)
  assert neurons.get("toy_relu").step is neurons.if_step
  with pytest.raises(ValueError, match="must be callable"):
    neurons.register("toy_bad", "lif")
  assert "toy_bad" not in neurons.names()
