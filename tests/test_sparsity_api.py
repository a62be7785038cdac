"""The composable sparsity API: pure events, masked optax, the registry."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snn_sparse import sparsity
from snn_sparse.sparsity import optimizer_state


def _params(seed=0):
  k = jax.random.key(seed)
  return {"Conv_0": {"kernel": jax.random.normal(k, (3, 3, 2, 8)),
                     "bias": jnp.zeros(8)},
          "Dense_0": {"kernel": jax.random.normal(jax.random.fold_in(k, 1),
                                                  (32, 10)),
                      "bias": jnp.zeros(10)}}


def _setup(name):
  algo = sparsity.create(name, rewire_every=5, total_steps=100,
                         steps_per_iteration=20)
  params = _params()
  state = algo.init(params, jax.random.key(1))
  params = sparsity.apply_masks(params, state.masks)
  tx = sparsity.masked(optax.sgd(0.1, momentum=0.9))
  opt_state = tx.init(params)
  grads = jax.tree.map(lambda w: jax.random.normal(jax.random.key(7),
                                                   w.shape), params)
  updates, opt_state = tx.update(grads, opt_state, params, masks=state.masks)
  return algo, optax.apply_updates(params, updates), state, opt_state, grads


def _events(algo, params, state, opt_state, grads, jit):
  rewire = jax.jit(algo.rewire) if jit else algo.rewire
  end = jax.jit(algo.end_iteration) if jit else algo.end_iteration
  out = rewire(params, state, opt_state, step=jnp.int32(5),
               key=jax.random.key(3), grads=grads)
  return out, end(*out[:3], key=jax.random.key(4), step=jnp.int32(20))


@pytest.mark.parametrize("name", sparsity.ALGORITHMS)
def test_events_are_pure_and_equal_with_and_without_jit(name):
  algo, params, state, opt_state, grads = _setup(name)
  eager = _events(algo, params, state, opt_state, grads, jit=False)
  jitted = _events(algo, params, state, opt_state, grads, jit=True)
  chex.assert_trees_all_close(eager, jitted, rtol=1e-6, atol=1e-6)
  # The inputs are untouched (pure functions) and the reports complete.
  chex.assert_trees_all_equal(state.masks, algo.init(
      _params(), jax.random.key(1)).masks)
  for (_, _, _, report) in (eager[0], eager[1]):
    assert {"pq_index", "ratio", "pruned", "grown", "active", "density",
            "total"} <= set(report)
  new_params, new_state = eager[1][0], eager[1][1]
  assert int(new_state.iteration) == 1
  if new_state.masks is not None:
    for w, m in zip(jax.tree.leaves(new_params["Dense_0"]["kernel"]),
                    jax.tree.leaves(new_state.masks["Dense_0"]["kernel"])):
      assert not np.any(np.asarray(w)[~np.asarray(m)])


@pytest.mark.parametrize("name", ["pq_dst", "rigl", "gmp", "sap"])
def test_events_do_not_retrace_when_values_change(name):
  algo, params, state, opt_state, grads = _setup(name)
  chex.clear_trace_counter()  # counted per function name, across params

  @jax.jit
  @chex.assert_max_traces(n=1)
  def rewire(params, state, opt_state, step, key, grads):
    return algo.rewire(params, state, opt_state, step=step, key=key,
                       grads=grads)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def end(params, state, opt_state, key):
    return algo.end_iteration(params, state, opt_state, key=key)

  for i in range(3):
    params = jax.tree.map(lambda w, i=i: w * (1.0 + i), params)
    params, state, opt_state, _ = rewire(params, state, opt_state,
                                         jnp.int32(5 * (i + 1)),
                                         jax.random.key(i), grads)
    params, state, opt_state, _ = end(params, state, opt_state,
                                      jax.random.key(10 + i))
  assert int(state.iteration) == 3


def test_masked_keeps_inactive_weights_at_zero_under_weight_decay():
  params = _params()
  masks = sparsity.init_masks(params, method="uniform", density=0.3,
                              key=jax.random.key(0))
  params = sparsity.apply_masks(params, masks)
  tx = sparsity.masked(optax.adamw(1e-2, weight_decay=0.1))
  opt_state = tx.init(params)
  for i in range(5):
    grads = jax.tree.map(lambda w, i=i: jax.random.normal(
        jax.random.key(i), w.shape), params)
    updates, opt_state = tx.update(grads, opt_state, params, masks=masks)
    params = optax.apply_updates(params, updates)
  m = np.asarray(masks["Dense_0"]["kernel"])
  w = np.asarray(params["Dense_0"]["kernel"])
  assert not np.any(w[~m]) and np.all(w[m] != 0)
  assert np.any(np.asarray(params["Dense_0"]["bias"]) != 0)  # unmasked
  # masks=None: a plain optimizer.
  dense, _ = tx.update(grads, tx.init(params), params)
  plain, _ = optax.adamw(1e-2, weight_decay=0.1).update(
      grads, optax.adamw(1e-2, weight_decay=0.1).init(params), params)
  chex.assert_trees_all_equal(dense, plain)


@pytest.mark.parametrize("make_tx", [
    lambda: optax.sgd(0.1, momentum=0.9),
    lambda: optax.adam(1e-3),
    lambda: optax.inject_hyperparams(optax.sgd)(
        learning_rate=optax.cosine_decay_schedule(0.1, 100), momentum=0.9),
])
def test_restart_is_a_fresh_optimizer(make_tx):
  tx, params = make_tx(), _params()
  opt_state = tx.init(params)
  for i in range(3):
    grads = jax.tree.map(lambda w, i=i: jnp.full(w.shape, i + 1.0), params)
    _, opt_state = tx.update(grads, opt_state, params)
  fresh, restarted = tx.init(params), optimizer_state.restart(opt_state)
  # The next update from either is the same: the restart is exact.
  grads = jax.tree.map(jnp.ones_like, params)
  chex.assert_trees_all_equal(tx.update(grads, fresh, params),
                              tx.update(grads, restarted, params))


def test_registry():
  with pytest.raises(ValueError, match=r"sparsity.algorithm: must be one of "
                     r"\[.*'pq_dst'.*\], got 'nope'"):
    sparsity.create("nope")
  with pytest.raises(ValueError, match="already registered"):
    sparsity.register("pq_dst", sparsity.algorithms.pq_dst)
  with pytest.raises(ValueError, match=r"sparsity: unknown field\(s\) "
                     r"\['rewire_evry'\]"):
    sparsity.from_config({"rewire_evry": 3})
  assert set(sparsity.ALGORITHMS) <= set(sparsity.names())
  # Keyword arguments and a config section build equal algorithms.
  assert sparsity.create("esl", rewire_every=3) == sparsity.from_config(
      {"algorithm": "esl", "rewire_every": 3})


def test_a_growth_score_from_user_code():
  # Grow where the weight's own index is largest: deterministic, checkable.
  def last_first(params, masks, *, opt_state, grads, key):
    del params, opt_state, grads, key
    return jax.tree.map(
        lambda m: None if m is None else jnp.arange(m.size, dtype=jnp.float32
                                                     ).reshape(m.shape),
        masks, is_leaf=lambda x: x is None)

  algo = sparsity.SparsityAlgorithm(
      name="last_first", mask_init=sparsity.MaskInit("uniform", 0.5),
      timing=sparsity.EventTiming(every=1),
      rewire_amount=sparsity.ConstantRatio(0.25),
      growth=sparsity.Growth(score=last_first, random_tiebreak=False))
  params = {"d": {"kernel": jax.random.normal(jax.random.key(0), (8, 4))}}
  state = algo.init(params, jax.random.key(1))
  params = sparsity.apply_masks(params, state.masks)
  new_params, new_state, _, report = jax.jit(algo.rewire)(
      params, state, {}, step=1, key=jax.random.key(2))
  before = np.asarray(state.masks["d"]["kernel"]).ravel()
  after = np.asarray(new_state.masks["d"]["kernel"]).ravel()
  grown = np.flatnonzero(after & ~before)
  k = int(report["grown"]["d/kernel"])
  assert k == 4 and list(grown) == sorted(np.flatnonzero(~before))[-k:]
  assert not np.asarray(new_params["d"]["kernel"]).ravel()[grown].any()
