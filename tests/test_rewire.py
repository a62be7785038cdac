"""Tests for snn_sparse.sparsity.rewire."""

from __future__ import annotations

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snn_sparse.sparsity import optimizer_state as O
from snn_sparse.sparsity import rewire as R
from snn_sparse.sparsity.state import SparseState
from snn_sparse.training.train_state import TrainState

SGD_MOMENTUM = optax.sgd(0.1, momentum=0.9)
ADAM = optax.adam(1e-2)


@jax.jit
def _train_step(state, grads):
  return state.apply_dense_gradients(grads)


class SelectTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_exact_counts_with_ties(self):
    values = jnp.ones((4, 6))                      # all equal
    eligible = jnp.ones((4, 6), bool)
    k = jnp.array([0, 1, 3, 6])
    sel = self.variant(R.select_smallest)(values, eligible, k)
    np.testing.assert_array_equal(sel.sum(axis=1), [0, 1, 3, 6])
    # Ties go in index order.
    np.testing.assert_array_equal(sel[2], [1, 1, 1, 0, 0, 0])

  @chex.variants(with_jit=True, without_jit=True)
  def test_smallest_and_eligibility(self):
    values = jnp.array([[5., 1., 3., 0.5, 2., 2.]])
    eligible = jnp.array([[True, True, True, False, True, True]])
    f = self.variant(R.select_smallest)
    # 0.5 is not eligible; smallest eligible: 1, then the tie 2, 2.
    np.testing.assert_array_equal(f(values, eligible, jnp.array([2])),
                                  [[0, 1, 0, 0, 1, 0]])
    np.testing.assert_array_equal(f(values, eligible, jnp.array([3])),
                                  [[0, 1, 0, 0, 1, 1]])
    # k larger than the eligible count: all eligible, nothing else.
    np.testing.assert_array_equal(f(values, eligible, jnp.array([9])),
                                  eligible)

  def test_partial_ties_exact(self):
    values = jnp.array([[0., 1., 1., 1., 1., 2.]])
    sel = R.select_smallest(values, jnp.ones((1, 6), bool), jnp.array([3]))
    np.testing.assert_array_equal(sel, [[1, 1, 1, 0, 0, 0]])

  def test_random_tiebreak(self):
    values = jnp.zeros((1, 1000))
    tb = jax.random.uniform(jax.random.key(0), (1, 1000))
    sel = R.select_largest(values, jnp.ones((1, 1000), bool),
                           jnp.array([100]), tiebreak=tb)
    self.assertEqual(int(sel.sum()), 100)
    # Spread over the row rather than the first 100 indices.
    self.assertBetween(int(sel[0, :500].sum()), 30, 70)

  def test_nan_and_inf(self):
    values = jnp.array([[jnp.nan, jnp.inf, 1., -jnp.inf]])
    sel = R.select_largest(values, jnp.ones((1, 4), bool), jnp.array([2]))
    np.testing.assert_array_equal(sel, [[0, 1, 1, 0]])


def _params_masks():
  params = {
      "Dense_0": {"kernel": jnp.array([[0.1, -0.5, 0.0],
                                       [0.3, 0.0, -0.2],
                                       [0.0, 0.4, 0.9],
                                       [-0.7, 0.0, 0.0]]),
                  "bias": jnp.zeros(3)},
      "Dense_1": {"kernel": jnp.array([[1.0, 0.0], [0.0, -2.0],
                                       [0.0, 3.0]])},
  }
  masks = {
      "Dense_0": {"kernel": params["Dense_0"]["kernel"] != 0, "bias": None},
      "Dense_1": {"kernel": params["Dense_1"]["kernel"] != 0},
  }
  return params, masks


class PruneGrowTest(parameterized.TestCase):

  def test_prune_neuron_scope_by_hand(self):
    params, masks = _params_masks()
    counts = {"Dense_0/kernel": jnp.array([1, 2, 0]),
              "Dense_1/kernel": jnp.array([1, 0])}
    res = R.prune(params, masks, counts, scope="neuron")
    # Column 0 active [0.1, 0.3, -0.7]: drop 0.1. Column 1 [-0.5, 0.4]:
    # drop both. Dense_1 column 0 [1.0]: drop it.
    want0 = jnp.array([[0, 0, 0], [1, 0, 1], [0, 0, 1], [1, 0, 0]], bool)
    np.testing.assert_array_equal(res.masks["Dense_0"]["kernel"], want0)
    np.testing.assert_array_equal(res.masks["Dense_1"]["kernel"],
                                  [[0, 0], [0, 1], [0, 1]])
    self.assertEqual(int(res.num_pruned["Dense_0/kernel"]), 3)
    self.assertEqual(int(res.num_pruned["Dense_1/kernel"]), 1)
    self.assertEqual(int(res.shortfall), 0)
    self.assertIsNone(res.masks["Dense_0"]["bias"])
    self.assertFalse(bool(jnp.any(res.grown["Dense_0"]["kernel"])))

  def test_prune_layer_and_global(self):
    params, masks = _params_masks()
    res = R.prune(params, masks, {"Dense_0/kernel": 2, "Dense_1/kernel": 0},
                  scope="layer")
    # Smallest active in Dense_0: 0.1 and -0.2.
    self.assertFalse(bool(res.masks["Dense_0"]["kernel"][0, 0]))
    self.assertFalse(bool(res.masks["Dense_0"]["kernel"][1, 2]))
    self.assertEqual(int(res.num_pruned["Dense_0/kernel"]), 2)
    # Global: the 4 smallest over both layers: 0.1, -0.2, 0.3, 0.4.
    res = R.prune(params, masks, jnp.array(4), scope="global")
    self.assertEqual(int(res.num_pruned["Dense_0/kernel"]), 4)
    self.assertEqual(int(res.num_pruned["Dense_1/kernel"]), 0)
    res = R.prune(params, masks, jnp.array(8), scope="global")
    # 0.1 0.2 0.3 0.4 0.5 0.7 0.9 1.0 -> Dense_1 loses 1.0 only.
    self.assertEqual(int(res.num_pruned["Dense_1/kernel"]), 1)

  def test_bad_counts(self):
    params, masks = _params_masks()
    with pytest.raises(ValueError, match="Dense_1/kernel"):
      R.prune(params, masks, {"Dense_0/kernel": 1}, scope="layer")
    with pytest.raises(ValueError, match="3 entries"):
      R.prune(params, masks, {"Dense_0/kernel": jnp.array([1, 1]),
                              "Dense_1/kernel": jnp.array([1, 1])},
              scope="neuron")

  def test_grow_by_score_no_regrow(self):
    params, masks = _params_masks()
    # The highest score sits on the synapse that gets pruned (0.1 at [0,0]).
    scores = {"Dense_0": {"kernel": jnp.array([[9., 0., 5.],
                                               [0., 4., 0.],
                                               [3., 0., 0.],
                                               [0., 1., 2.]]), "bias": None},
              "Dense_1": {"kernel": jnp.zeros((3, 2))}}
    counts = {"Dense_0/kernel": jnp.array([1, 0, 1]),
              "Dense_1/kernel": jnp.array([0, 0])}
    res = R.prune_and_grow(params, masks, counts, scores, scope="neuron")
    m0 = masks["Dense_0"]["kernel"]
    new = res.masks["Dense_0"]["kernel"]
    pruned = res.pruned["Dense_0"]["kernel"]
    grown = res.grown["Dense_0"]["kernel"]
    # No synapse is both pruned and regrown.
    self.assertFalse(bool(jnp.any(pruned & grown)))
    # Column 0: 0.1 pruned, best inactive candidate [2,0] (score 3) grown.
    self.assertTrue(bool(pruned[0, 0]) and bool(grown[2, 0]))
    # Column 2: -0.2 pruned; candidates [0,2] (5), [3,2] (2) -> [0,2].
    self.assertTrue(bool(pruned[1, 2]) and bool(grown[0, 2]))
    self.assertEqual(int(new.sum()), int(m0.sum()))
    np.testing.assert_array_equal(grown.sum(axis=0), [1, 0, 1])
    self.assertFalse(bool(jnp.any(grown & m0)))

  def test_allow_regrow(self):
    params, masks = _params_masks()
    scores = {"Dense_0": {"kernel": jnp.array([[9., 0., 5.],
                                               [0., 4., 0.],
                                               [3., 0., 0.],
                                               [0., 1., 2.]]), "bias": None},
              "Dense_1": {"kernel": jnp.zeros((3, 2))}}
    counts = {"Dense_0/kernel": jnp.array([1, 0, 0]),
              "Dense_1/kernel": jnp.array([0, 0])}
    res = R.prune_and_grow(params, masks, counts, scores, scope="neuron",
                           allow_regrow=True)
    # RigL rule: the just-pruned [0,0] has the best score and comes back.
    # It simply stays (reinit_when_same=False): neither pruned nor grown.
    self.assertTrue(bool(res.masks["Dense_0"]["kernel"][0, 0]))
    self.assertFalse(bool(res.pruned["Dense_0"]["kernel"][0, 0]))
    self.assertFalse(bool(res.grown["Dense_0"]["kernel"][0, 0]))
    self.assertEqual(int(res.num_pruned["Dense_0/kernel"]), 0)
    self.assertEqual(int(res.num_grown["Dense_0/kernel"]), 0)
    np.testing.assert_array_equal(res.masks["Dense_0"]["kernel"],
                                  masks["Dense_0"]["kernel"])

  def test_shortfall_when_no_candidates(self):
    params = {"d": {"kernel": jnp.arange(1., 7.).reshape(3, 2)}}
    masks = {"d": {"kernel": jnp.array([[True, True], [True, True],
                                        [True, False]])}}
    scores = {"d": {"kernel": jnp.ones((3, 2))}}
    res = R.prune_and_grow(params, masks, {"d/kernel": jnp.array([2, 1])},
                           scores, scope="neuron")
    # Column 0 is full: prunes 2, has no candidate. Column 1 prunes 1,
    # regrows its single inactive synapse.
    np.testing.assert_array_equal(res.pruned["d"]["kernel"].sum(0), [2, 1])
    np.testing.assert_array_equal(res.grown["d"]["kernel"].sum(0), [0, 1])
    self.assertEqual(int(res.shortfall), 2)
    # limit_to_candidates: column 0 prunes nothing, density exactly constant.
    res = R.prune_and_grow(params, masks, {"d/kernel": jnp.array([2, 1])},
                           scores, scope="neuron", limit_to_candidates=True)
    np.testing.assert_array_equal(res.pruned["d"]["kernel"].sum(0), [0, 1])
    np.testing.assert_array_equal(res.grown["d"]["kernel"].sum(0), [0, 1])
    self.assertEqual(int(res.shortfall), 0)

  def test_ties_exact_in_prune_and_grow(self):
    params = {"d": {"kernel": jnp.ones((50, 4))}}
    masks = {"d": {"kernel": jnp.arange(200).reshape(50, 4) % 2 == 0}}
    scores = {"d": {"kernel": jnp.zeros((50, 4))}}
    k = jnp.array([3, 0, 7, 0])
    res = R.prune_and_grow(params, masks, {"d/kernel": k}, scores,
                           scope="neuron")
    np.testing.assert_array_equal(res.pruned["d"]["kernel"].sum(0), k)
    np.testing.assert_array_equal(res.grown["d"]["kernel"].sum(0), [0, 0, 0, 0])
    self.assertEqual(int(res.shortfall), 10)  # odd columns are inactive.
    k = jnp.array([0, 5, 0, 9])
    masks = {"d": {"kernel": jnp.arange(200).reshape(50, 4) < 100}}
    res = R.prune_and_grow(params, masks, {"d/kernel": k}, scores,
                           scope="neuron")
    np.testing.assert_array_equal(res.pruned["d"]["kernel"].sum(0), k)
    np.testing.assert_array_equal(res.grown["d"]["kernel"].sum(0), k)


class MomentTest(parameterized.TestCase):

  def _state(self, tx, steps=3):
    params = {"Dense_0": {"kernel": jnp.ones((4, 3)), "bias": jnp.ones(3)}}
    masks = {"Dense_0": {"kernel": jnp.eye(4, 3, dtype=bool), "bias": None}}
    state = TrainState.create(apply_fn=None, params=params, tx=tx,
                              sparsity=SparseState.from_masks(masks))
    for i in range(steps):
      g = jax.tree.map(
          lambda w, i=i: jax.random.normal(jax.random.key(i), w.shape),
          params)
      state = _train_step(state, g)
    return state

  def test_momentum_sgd_and_adam(self):
    state = self._state(SGD_MOMENTUM)
    np.testing.assert_array_equal(
        O.optimizer_momentum(state.opt_state, state.params)["Dense_0"]
        ["kernel"], state.opt_state[0].trace["Dense_0"]["kernel"])
    state = self._state(optax.adam(1e-3))
    mu = state.opt_state[0].mu["Dense_0"]["kernel"]
    nu = state.opt_state[0].nu["Dense_0"]["kernel"]
    np.testing.assert_allclose(
        O.optimizer_momentum(state.opt_state, state.params, eps=1e-8)
        ["Dense_0"]["kernel"], mu / (jnp.sqrt(nu) + 1e-8), rtol=1e-6)

  def test_momentum_nested(self):
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3))
    state = self._state(tx)
    m = O.optimizer_momentum(state.opt_state, state.params)
    self.assertEqual(m["Dense_0"]["kernel"].shape, (4, 3))

  def test_no_momentum_raises(self):
    state = self._state(optax.sgd(0.1))
    with pytest.raises(ValueError, match="momentum"):
      O.optimizer_momentum(state.opt_state, state.params)
    with pytest.raises(ValueError, match="grads"):
      R.growth_scores("gradient", state.params, state.masks)
    with pytest.raises(ValueError, match="'grow'"):
      R.growth_scores("hebbian", state.params, state.masks)

  @parameterized.named_parameters(
      ("sgd", lambda: optax.sgd(0.1, momentum=0.9)),
      ("adam", lambda: optax.adam(1e-3)),
      ("adamw_chain", lambda: optax.chain(optax.clip_by_global_norm(1.0),
                                          optax.adamw(1e-3))),
      ("inject", lambda: optax.inject_hyperparams(optax.adam)(
          learning_rate=1e-3)),
  )
  def test_reset_moments(self, make_tx):
    tx = make_tx()
    state = self._state(tx)
    grown = {"Dense_0": {"kernel": jnp.zeros((4, 3), bool).at[3, 0].set(True)
                         .at[0, 2].set(True), "bias": None}}
    before = jax.tree.leaves(state.opt_state)
    after_state = jax.jit(O.reset_moments)(state.opt_state, grown)
    after = jax.tree.leaves(after_state)
    n_reset = 0
    for b, a in zip(before, after):
      if b.shape == (4, 3):
        n_reset += 1
        self.assertTrue(bool(jnp.any(b[3, 0] != 0)))
        self.assertEqual(float(a[3, 0]), 0.0)
        self.assertEqual(float(a[0, 2]), 0.0)
        np.testing.assert_array_equal(a[1:3], b[1:3])
      else:
        np.testing.assert_array_equal(a, b)   # counts, biases, hyperparams.
    self.assertGreaterEqual(n_reset, 1)


def _rewire_state(state, counts, *, scope, grow, grads=None,
                  allow_regrow=False):
  """Prune ``counts``, grow as many by ``grow``, apply: a whole event."""
  scores = R.growth_scores(grow, state.params, state.masks,
                           opt_state=state.opt_state, grads=grads,
                           key=jax.random.key(5))
  res = R.prune_and_grow(state.params, state.masks, counts, scores,
                         scope=scope, allow_regrow=allow_regrow)
  return _applied(state, res), res


def _net_prune_state(state, counts, *, scope):
  res = R.prune(state.params, state.masks, counts, scope=scope)
  return _applied(state, res), res


def _applied(state, res):
  params, opt_state = R.apply_result(state.params, state.opt_state, res)
  return state.replace(params=params, opt_state=opt_state,
                       sparsity=state.sparsity.replace(masks=res.masks))


class ApplyResultTest(parameterized.TestCase):

  def _state(self, tx):
    k = jax.random.key(0)
    params = {"Conv_0": {"kernel": jax.random.normal(k, (3, 3, 2, 4)),
                         "bias": jnp.zeros(4)},
              "Dense_0": {"kernel": jax.random.normal(k, (16, 5))}}
    masks = {"Conv_0": {"kernel": jax.random.bernoulli(k, 0.4, (3, 3, 2, 4)),
                        "bias": None},
             "Dense_0": {"kernel": jax.random.bernoulli(
                 jax.random.fold_in(k, 1), 0.4, (16, 5))}}
    state = TrainState.create(apply_fn=None, params=params, tx=tx,
                              sparsity=SparseState.from_masks(masks))
    for i in range(3):
      g = jax.tree.map(lambda w, i=i: jax.random.normal(
          jax.random.key(10 + i), w.shape), params)
      state = _train_step(state, g)
    return state

  @parameterized.parameters("momentum", "gradient", "random")
  def test_grown_zero_weights_and_moments(self, grow):
    state = self._state(ADAM)
    grads = jax.tree.map(lambda w: jnp.ones_like(w), state.params)
    counts = {"Conv_0/kernel": jnp.array([2, 1, 0, 3]),
              "Dense_0/kernel": jnp.array([1, 1, 1, 1, 1])}
    new, res = _rewire_state(state, counts, scope="neuron", grow=grow,
                              grads=grads)
    for path in ("Conv_0", "Dense_0"):
      g = np.asarray(res.grown[path]["kernel"])
      m = np.asarray(new.masks[path]["kernel"])
      old_mu = np.asarray(state.opt_state[0].mu[path]["kernel"])
      self.assertGreater(int(g.sum()), 0)
      self.assertTrue(np.all(old_mu[g] != 0))
      self.assertTrue(np.all(np.asarray(new.params[path]["kernel"])[g] == 0))
      self.assertTrue(np.all(np.asarray(new.params[path]["kernel"])[~m] == 0))
      self.assertTrue(np.all(
          np.asarray(new.opt_state[0].mu[path]["kernel"])[g] == 0))
      self.assertTrue(np.all(
          np.asarray(new.opt_state[0].nu[path]["kernel"])[g] == 0))
      self.assertEqual(int(m.sum()), int(np.sum(state.masks[path]["kernel"])))
    np.testing.assert_array_equal(
        res.pruned["Conv_0"]["kernel"].sum(axis=(0, 1, 2)), [2, 1, 0, 3])
    # Untouched params (the bias) pass through.
    np.testing.assert_array_equal(new.params["Conv_0"]["bias"],
                                  state.params["Conv_0"]["bias"])

  def test_same_step_regrowth_keeps_weight_and_moments(self):
    # RigL's reference (reinit_when_same=False): a synapse dropped and
    # regrown in one event keeps its weight and moments; only new
    # connections are grown (at 0, moments reset).
    state = self._state(ADAM)
    w = np.asarray(state.params["Dense_0"]["kernel"])
    m = np.asarray(state.masks["Dense_0"]["kernel"])
    col = 0
    active = np.flatnonzero(m[:, col])
    inactive = np.flatnonzero(~m[:, col])
    smallest = active[np.argsort(np.abs(w[active, col]))[:2]]
    # Gradient scores: the two pruned synapses and one inactive one are
    # the three best candidates; two may grow.
    g = np.zeros_like(w)
    g[smallest[0], col] = 10.0   # dropped, best score: comes back
    g[inactive[0], col] = 5.0    # new connection
    g[smallest[1], col] = 1.0    # dropped, third: stays dropped
    grads = jax.tree.map(jnp.zeros_like, state.params)
    grads["Dense_0"]["kernel"] = jnp.asarray(g)
    counts = {"Conv_0/kernel": jnp.zeros(4, jnp.int32),
              "Dense_0/kernel": jnp.array([2, 0, 0, 0, 0])}
    new, res = _rewire_state(state, counts, scope="neuron", grow="gradient",
                              grads=grads, allow_regrow=True)
    nm = np.asarray(new.masks["Dense_0"]["kernel"])
    nw = np.asarray(new.params["Dense_0"]["kernel"])
    mu = np.asarray(state.opt_state[0].mu["Dense_0"]["kernel"])
    new_mu = np.asarray(new.opt_state[0].mu["Dense_0"]["kernel"])
    kept, fresh, gone = smallest[0], inactive[0], smallest[1]
    self.assertTrue(nm[kept, col] and nm[fresh, col] and not nm[gone, col])
    self.assertEqual(nw[kept, col], w[kept, col])
    self.assertNotEqual(nw[kept, col], 0)
    self.assertEqual(new_mu[kept, col], mu[kept, col])
    self.assertEqual(nw[fresh, col], 0)
    self.assertEqual(new_mu[fresh, col], 0)
    self.assertEqual(int(res.num_grown["Dense_0/kernel"]), 1)
    self.assertEqual(int(res.num_pruned["Dense_0/kernel"]), 1)
    grown = np.asarray(res.grown["Dense_0"]["kernel"])
    self.assertEqual(np.flatnonzero(grown).tolist(),
                     [fresh * grown.shape[1] + col])

  def test_gradient_growth_follows_gradient(self):
    state = self._state(SGD_MOMENTUM)
    m = np.asarray(state.masks["Dense_0"]["kernel"])
    target = tuple(int(i) for i in np.argwhere(~m)[0])
    g = np.zeros(m.shape, np.float32)
    g[target] = 5.0
    grads = jax.tree.map(jnp.zeros_like, state.params)
    grads["Dense_0"]["kernel"] = jnp.asarray(g)
    counts = {"Conv_0/kernel": jnp.array(0), "Dense_0/kernel": jnp.array(1)}
    new, _ = _rewire_state(state, counts, scope="layer", grow="gradient",
                            grads=grads)
    self.assertTrue(bool(new.masks["Dense_0"]["kernel"][target]))

  def test_net_prune(self):
    state = self._state(SGD_MOMENTUM)
    new, res = _net_prune_state(state, jnp.array(5), scope="global")
    before = sum(int(np.sum(m)) for m in jax.tree.leaves(state.masks))
    after = sum(int(np.sum(m)) for m in jax.tree.leaves(new.masks))
    self.assertEqual(before - after, 5)
    self.assertEqual(int(res.shortfall), 0)
    for path in ("Conv_0", "Dense_0"):
      m = np.asarray(new.masks[path]["kernel"])
      self.assertTrue(np.all(np.asarray(new.params[path]["kernel"])[~m] == 0))
    # The 5 removed were the smallest active magnitudes over both layers.
    w = np.concatenate([np.abs(np.asarray(state.params[p]["kernel"])).ravel()
                        for p in ("Conv_0", "Dense_0")])
    m0 = np.concatenate([np.asarray(state.masks[p]["kernel"]).ravel()
                         for p in ("Conv_0", "Dense_0")])
    m1 = np.concatenate([np.asarray(new.masks[p]["kernel"]).ravel()
                         for p in ("Conv_0", "Dense_0")])
    self.assertLessEqual(w[m0 & ~m1].max(), w[m1].min())

  def test_no_retrace_when_counts_change(self):
    state = self._state(SGD_MOMENTUM)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, k0, k1):
      return _rewire_state(state, {"Conv_0/kernel": k0, "Dense_0/kernel": k1},
                      scope="neuron", grow="momentum")

    totals = []
    for i in range(4):
      k0 = jnp.array([i, 0, 1, i % 2], jnp.int32)
      k1 = jnp.full((5,), i, jnp.int32)
      state, res = step(state, k0, k1)
      totals.append(int(sum(res.num_pruned.values())))
    self.assertEqual(totals, [1, 8, 13, 20])
    self.assertEqual(step._cache_size(), 1)
