"""Tests for snn_sparse.sparsity.algorithms."""

from __future__ import annotations

from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from snn_sparse import sparsity as S
from snn_sparse.training import train_state as TS
from snn_sparse.sparsity import algorithms as A
from snn_sparse.sparsity import masks as M
from snn_sparse.sparsity import pq
from snn_sparse.sparsity import schedules
from snn_sparse.sparsity.layout import UnitLayout
from snn_sparse.sparsity.state import SparseState
from snn_sparse.training.train_state import TrainState

REPORT_GROUPS = {"pq_index", "ratio", "pruned", "grown", "active", "density",
                 "total"}


def _params(key=0):
  k = jax.random.key(key)
  return {
      "Conv_0": {"kernel": jax.random.normal(k, (3, 3, 2, 8)),
                 "bias": jnp.zeros(8)},
      "BatchNorm_0": {"scale": jnp.ones(8), "bias": jnp.zeros(8)},
      "Dense_0": {"kernel": jax.random.normal(jax.random.fold_in(k, 1),
                                              (32, 10)),
                  "bias": jnp.zeros(10)},
  }


def _config(**kwargs):
  cfg = S.default_sparsity_config()
  for name, value in kwargs.items():
    cfg[name] = value
  return cfg


TX = {
    "sgd_momentum": optax.sgd(0.1, momentum=0.9),
    "sgd": optax.sgd(0.1),
    "adam": optax.adam(1e-2),
}
_STATES = {}


def _state(algo, tx="sgd_momentum", steps=2):
  """A validated TrainState after ``steps`` dense-gradient steps (cached)."""
  cache_key = (algo, tx, steps)
  if cache_key not in _STATES:
    params = _params()
    state = TrainState.create(
        apply_fn=None, params=params, tx=TX[tx],
        sparsity=algo.init(params, jax.random.key(1)), rng=jax.random.key(2))
    algo.validate(state.params, state.sparsity, state.opt_state)
    for i in range(steps):
      state = _train_step(state, _grads(params, i))
    _STATES[cache_key] = state
  return _STATES[cache_key]


@jax.jit
def _train_step(state, grads):
  return state.apply_dense_gradients(grads)


# The algorithm's events on a TrainState, jitted with the algorithm static,
# as the trainer runs them.
_rewire = jax.jit(TS.rewire, static_argnums=0)
_end_iteration = jax.jit(TS.end_iteration, static_argnums=0)


def _grads(params, i):
  return jax.tree.map(
      lambda w: jax.random.normal(jax.random.key(100 + i), w.shape), params)


def _active(masks):
  return sum(int(np.sum(m)) for m in jax.tree.leaves(masks))


def _np(tree):
  return jax.tree.map(np.asarray, tree)


class ConfigTest(parameterized.TestCase):

  def test_defaults(self):
    cfg = S.default_sparsity_config()
    self.assertIsInstance(cfg, ml_collections.ConfigDict)
    algo = S.from_config(cfg)
    c = algo.config
    self.assertEqual(
        (c.algorithm, c.scope, c.p, c.q, c.alpha_r, c.gamma, c.beta, c.init,
         c.init_density, c.grow, c.ratio, c.net_prune, c.allow_regrow,
         c.pq_weights, c.protect_grown, c.rounding, c.shortfall),
        ("pq_dst", "layer", 0.5, 1.0, 0.001, 1.0, 0.9, "erk", 0.5,
         "momentum", "pq", True, False, "active", False, "floor", "limit"))

  def test_presets_and_overrides(self):
    rigl = S.from_config(_config(algorithm="rigl"), total_steps=1000)
    self.assertEqual((rigl.config.grow, rigl.config.allow_regrow,
                      rigl.config.ratio, rigl.config.rewire_end),
                     ("gradient", True, "cosine", 750))
    self.assertTrue(rigl.needs_grads)
    s = S.from_config(_config(algorithm="set", rewire_end=40))
    self.assertEqual((s.config.grow, s.config.allow_regrow), ("random", False))
    s = S.from_config(_config(algorithm="set", grow="momentum", rewire_end=40))
    self.assertEqual(s.config.grow, "momentum")
    esl = S.from_config(_config(algorithm="esl"))
    self.assertEqual((esl.config.ratio, esl.config.net_prune),
                     ("constant", False))
    self.assertEqual(S.from_config(_config(algorithm="gmp", rewire_end=50))
                     .config.init, "dense")

  @parameterized.parameters(
      (dict(algorithm="prune_all"), "sparsity.algorithm", "pq_dst"),
      (dict(scope="unit"), "sparsity.scope", "neuron"),
      (dict(grow="hebbian"), "sparsity.grow", "momentum"),
      (dict(ratio="linear"), "sparsity.ratio", "cosine"),
      (dict(init="xavier"), "sparsity.init", "erk"),
      (dict(rounding="ceil"), "sparsity.rounding", "stochastic"),
      (dict(pq_weights="old"), "sparsity.pq_weights", "mature"),
      (dict(q=0.4), "sparsity.q", "> p"),
      (dict(p=0.0), "sparsity.p", ""),
      (dict(beta=1.5), "sparsity.beta", ""),
      (dict(init_density=0.0), "sparsity.init_density", ""),
      (dict(rewire_every=-1), "sparsity.rewire_every", ""),
      (dict(net_prune="yes"), "sparsity.net_prune", ""),
      (dict(algorithm="set"), "sparsity.rewire_end", "total_steps"),
      (dict(algorithm="gmp", rewire_every=0, rewire_end=10),
       "sparsity.rewire_every", ""),
      (dict(rewire_start=10, rewire_end=5), "sparsity.rewire_end", ""),
  )
  def test_bad_values(self, fields, name, hint):
    with pytest.raises(ValueError, match=name) as e:
      S.from_config(dict(fields))
    self.assertIn(hint, str(e.value))

  def test_no_event_in_the_last_rewire_every_steps_of_an_iteration(self):
    # Iterations of 50 steps, an event every 10: 10, 20, 30, 40 fire; 50,
    # the iteration's last step, does not (nor 100, ...).
    algo = S.from_config(_config(rewire_every=10), steps_per_iteration=50)
    steps = [s for s in range(1, 151) if algo.is_rewire_step(s)]
    self.assertEqual(steps, [10, 20, 30, 40, 60, 70, 80, 90, 110, 120, 130,
                             140])
    self.assertTrue(algo.in_quiet_steps(41) and algo.in_quiet_steps(50))
    self.assertFalse(algo.in_quiet_steps(40) or algo.in_quiet_steps(51))
    # Periods that do not divide the iteration: 7 -> 7..42 fire, 49 does
    # not (1 step left); 56 is step 6 of iteration 2 and fires.
    algo = S.from_config(_config(rewire_every=7), steps_per_iteration=50)
    self.assertEqual([s for s in range(1, 60) if algo.is_rewire_step(s)],
                     [7, 14, 21, 28, 35, 42, 56])
    # Every algorithm with in-iteration events follows the rule.
    for name in ("esl", "set", "set_mocanu", "rigl"):
      algo = S.from_config(_config(algorithm=name, rewire_every=10),
                      total_steps=500, steps_per_iteration=50)
      self.assertEqual([s for s in range(1, 101) if algo.is_rewire_step(s)],
                       [10, 20, 30, 40, 60, 70, 80, 90])
    # Without iterations there are no quiet steps.
    algo = S.from_config(_config(rewire_every=10))
    self.assertTrue(algo.is_rewire_step(50))

  def test_gmp_final_event_leaves_the_quiet_steps(self):
    # Derived end 0.75 * 200 = 150 is an iteration's last step: moved to 140.
    gmp = S.from_config(_config(algorithm="gmp", rewire_every=10),
                   total_steps=200, steps_per_iteration=50)
    self.assertEqual(gmp.config.rewire_end, 140)
    self.assertEqual([s for s in range(1, 201) if gmp.is_rewire_step(s)],
                     [10, 20, 30, 40, 60, 70, 80, 90, 110, 120, 130, 140])
    with pytest.raises(ValueError, match=r"sparsity.rewire_end: 145 lies in "
                       r"the last rewire_every = 10 steps.*140 or earlier"):
      S.from_config(_config(algorithm="gmp", rewire_every=10, rewire_end=145),
               steps_per_iteration=50)

  def test_rewire_every_must_leave_room_for_an_event(self):
    with pytest.raises(ValueError, match=r"sparsity.rewire_every: 50 >= the "
                       r"50 steps of an iteration"):
      S.from_config(_config(rewire_every=50), steps_per_iteration=50)
    # Algorithms without in-iteration events do not care.
    S.from_config(_config(algorithm="sap", rewire_every=50), steps_per_iteration=50)
    S.from_config(_config(rewire_every=0), steps_per_iteration=50)

  def test_unknown_field(self):
    with pytest.raises(ValueError, match="rewire_evry"):
      S.from_config({"rewire_evry": 10})

  def test_schedule(self):
    algo = S.from_config(_config(rewire_every=10, rewire_start=10, rewire_end=50))
    steps = [s for s in range(0, 70) if algo.is_rewire_step(s)]
    self.assertEqual(steps, [20, 30, 40, 50])
    self.assertFalse(S.from_config(_config(rewire_every=0)).is_rewire_step(100))
    gmp = S.from_config(_config(algorithm="gmp", rewire_every=30, rewire_end=100))
    self.assertEqual([s for s in range(200) if gmp.is_rewire_step(s)],
                     [30, 60, 90, 100])
    static = S.from_config(_config(algorithm="static"))
    self.assertFalse(static.is_rewire_step(100))


class RegistryTest(parameterized.TestCase):

  @parameterized.parameters(*A.ALGORITHMS)
  def test_every_algorithm_runs(self, name):
    algo = S.from_config(_config(algorithm=name), total_steps=100)
    state = _state(algo)
    if name == "dense":
      self.assertIsNone(state.masks)
    grads = _grads(state.params, 7)
    reports = []
    if algo.has_rewire_event:
      state, rep = _rewire(algo, state, grads if algo.needs_grads else None)
      reports.append(rep)
    state, rep = _end_iteration(algo, state)
    reports.append(rep)
    for i, rep in enumerate(reports):
      # A net prune also reports how many grown synapses survive it.
      net_prune = i == len(reports) - 1 and name == "pq_dst"
      self.assertEqual(set(rep),
                       REPORT_GROUPS | ({"grown_survival"} if net_prune
                                        else set()))
      flat = S.flatten_report(rep)
      self.assertIn("total/density", flat)
      if name != "dense":
        self.assertIn("pq_index/Conv_0/kernel", flat)
    if state.masks is not None:
      for m, w in zip(jax.tree.leaves(_np(state.masks)),
                      [state.params["Conv_0"]["kernel"],
                       state.params["Dense_0"]["kernel"]]):
        self.assertEqual(m.dtype, np.bool_)
        self.assertTrue(np.all(np.asarray(w)[~m] == 0))
    self.assertEqual(int(state.sparsity.iteration), 1)

  def test_rigl_needs_grads(self):
    algo = S.from_config(_config(algorithm="rigl"), total_steps=100)
    state = _state(algo)
    with pytest.raises(ValueError, match="grads"):
      _rewire(algo, state)

  def test_momentum_optimizer_required(self):
    algo = S.from_config(_config())
    with pytest.raises(ValueError, match="momentum"):
      _state(algo, tx="sgd")
    _state(S.from_config(_config(grow="random")), tx="sgd")


class PQDSTTest(parameterized.TestCase):

  @parameterized.parameters("layer", "neuron", "global")
  def test_rewire_counts_and_constant_density(self, scope):
    algo = S.from_config(_config(scope=scope))
    state = _state(algo)
    layout = UnitLayout(state.masks, scope)
    w, m = layout.rows(state.params), layout.rows(state.masks)
    want = {}
    for n in layout.names:
      index = pq.pq_index_rows(w[n], m[n])
      k = pq.rewire_count(pq.ratio_from_index(index), m[n].sum(1))
      want[n] = int(np.sum(k))
    new, rep = _rewire(algo, state)
    self.assertEqual(int(rep["total"]["pruned"]), sum(want.values()))
    self.assertEqual(int(rep["total"]["grown"]), sum(want.values()))
    self.assertEqual(int(rep["total"]["grow_shortfall"]), 0)
    self.assertEqual(_active(new.masks), _active(state.masks))
    if scope != "global":
      for path in layout.paths:
        self.assertEqual(int(rep["pruned"][path]), want[path])
    # Grown synapses are tracked, were inactive before, and have weight 0.
    for path in ("Conv_0", "Dense_0"):
      g = np.asarray(new.sparsity.grown[path]["kernel"])
      self.assertEqual(int(g.sum()), int(rep["grown"][f"{path}/kernel"]))
      self.assertFalse(np.any(g & np.asarray(state.masks[path]["kernel"])))
      self.assertTrue(np.all(np.asarray(new.params[path]["kernel"])[g] == 0))
      self.assertTrue(np.all(
          np.asarray(new.opt_state[0].trace[path]["kernel"])[g] == 0))

  def test_net_prune_counts(self):
    algo = S.from_config(_config())
    state = _state(algo)
    expected = 0
    for path, w in (("Conv_0", state.params["Conv_0"]["kernel"]),
                    ("Dense_0", state.params["Dense_0"]["kernel"])):
      m = state.masks[path]["kernel"]
      expected += int(np.floor(pq.rewiring_ratio(w, m) * np.sum(m)))
    new, rep = _end_iteration(algo, state)
    self.assertEqual(_active(state.masks) - _active(new.masks), expected)
    self.assertEqual(int(rep["total"]["pruned"]), expected)
    self.assertEqual(int(rep["total"]["grown"]), 0)
    self.assertEqual(int(rep["total"]["grow_shortfall"]), 0)
    off = S.from_config(_config(net_prune=False))
    state = _state(off)
    new, rep = _end_iteration(off, state)
    self.assertEqual(_active(new.masks), _active(state.masks))

  def test_density_trajectory(self):
    """The paper's layer-wise curve: ~0.30 at iteration 4, ~0.11 at 10.

    For Gaussian weights I(0.5, 1) ~ 0.1528, c ~ 0.1545, so each iteration
    keeps ~0.8455 of the active synapses: 0.5 * 0.8455**3 = 0.302 and
    0.5 * 0.8455**9 = 0.110.
    """
    key = jax.random.key(0)
    params = {"fc1": {"kernel": jnp.zeros((64, 64))},
              "conv": {"kernel": jnp.zeros((3, 3, 16, 32))},
              "fc2": {"kernel": jnp.zeros((128, 32))}}
    algo = S.from_config(_config())
    state = TrainState.create(apply_fn=None, params=params,
                              tx=optax.sgd(0.1, momentum=0.9),
                              sparsity=algo.init(params, key))
    densities = []
    for it in range(1, 11):
      density = M.mask_stats(state.params, state.masks)["masked_density"]
      densities.append(float(density))
      # Retraining stand-in: survivors re-drawn from a Gaussian.
      fresh = jax.tree.map(
          lambda w, i=it: jax.random.normal(jax.random.fold_in(key, i),
                                            w.shape), state.params)
      state = state.replace(params=M.apply_masks(fresh, state.masks))
      state, _ = _end_iteration(algo, state)
    self.assertAlmostEqual(densities[0], 0.5, delta=1e-3)
    self.assertAlmostEqual(densities[3], 0.30, delta=0.02)
    self.assertAlmostEqual(densities[9], 0.11, delta=0.02)
    self.assertTrue(all(a > b for a, b in zip(densities, densities[1:])))

  def test_density_trajectory_in_the_trainers_event_order(self):
    """The same curve with the trainer's in-iteration events (METHOD.md §5).

    The trainer's order: a train step, then ``rewire`` whenever
    ``algo.is_rewire_step(step)``, and ``end_iteration`` after the
    iteration's last step. Training is stood in for by an SGD step with
    random gradients (for the momentum that growth ranks) after which the
    active weights are Gaussian again: weights grown at 0 become ordinary
    weights once trained. With the rewiring schedule of every shipped
    config (one event per epoch), the last event of an iteration would
    otherwise fire on its last step, and the net prune would count and
    remove ~15% fresh zeros: density 0.23 at iteration 4 and 0.05 at 10.
    """
    key = jax.random.key(0)
    params = {"fc1": {"kernel": jnp.zeros((64, 64))},
              "conv": {"kernel": jnp.zeros((3, 3, 16, 32))},
              "fc2": {"kernel": jnp.zeros((128, 32))}}
    steps_per_epoch, epochs = 2, 5
    algo = S.from_config(_config(rewire_every=steps_per_epoch),
                    steps_per_iteration=steps_per_epoch * epochs)
    state = TrainState.create(apply_fn=None, params=params,
                              tx=optax.sgd(0.1, momentum=0.9),
                              sparsity=algo.init(params, key),
                              rng=jax.random.key(1))

    @jax.jit
    def train_step(state, k):
      grads = jax.tree.map(lambda w: jax.random.normal(k, w.shape),
                           state.params)
      state = state.apply_dense_gradients(grads)
      fresh = jax.tree.map(
          lambda w: jax.random.normal(jax.random.fold_in(k, w.size), w.shape),
          state.params)
      return state.replace(params=M.apply_masks(fresh, state.masks))

    densities, survival, step = [], [], 0
    for _ in range(10):
      densities.append(float(
          M.mask_stats(state.params, state.masks)["masked_density"]))
      for _ in range(steps_per_epoch * epochs):
        step += 1
        state = train_step(state.replace(step=jnp.asarray(step)),
                           jax.random.fold_in(key, step))
        if algo.is_rewire_step(step):
          state, _ = _rewire(algo, state)
      state, rep = _end_iteration(algo, state)
      survival.append(float(rep["total"]["grown_survival"]))
    self.assertAlmostEqual(densities[0], 0.5, delta=1e-3)
    self.assertAlmostEqual(densities[3], 0.30, delta=0.02)
    self.assertAlmostEqual(densities[9], 0.11, delta=0.02)
    # Trained regrowth survives the net prune like any synapse (~85%).
    self.assertGreater(min(survival), 0.7)

  def test_grown_survival_by_hand(self):
    # One 4x2 kernel, layer scope. Active: 6 synapses, of which [0,0] and
    # [1,1] were grown this iteration. The net prune removes the k smallest.
    w = jnp.array([[0.01, 9.0], [1.0, 0.02], [1.0, 1.0], [0.0, 0.0]])
    m = jnp.array([[True, True], [True, True], [True, True], [False, False]])
    g = jnp.array([[True, False], [False, True], [False, False],
                   [False, False]])
    params = {"d": {"kernel": w}}
    algo = S.from_config(_config())
    state = TrainState.create(apply_fn=None, params=params,
                              tx=optax.sgd(0.1, momentum=0.9),
                              sparsity=SparseState(
                                  masks={"d": {"kernel": m}},
                                  iteration=jnp.int32(0),
                                  grown={"d": {"kernel": g}}),
                              rng=jax.random.key(0))
    # Over the 6 active |w| = .01 .02 1 1 1 9: mean(sqrt|w|)**2 = 1.0821,
    # mean|w| = 2.005, 1 - I = 0.5397, c = 1 - 0.5397 / 1.001**2 = 0.4614,
    # k = floor(6c) = 2: both grown synapses (the smallest) go.
    c = float(pq.rewiring_ratio(w, m))
    self.assertEqual(int(np.floor(6 * c)), 2)
    _, rep = _end_iteration(algo, state)
    self.assertEqual(float(rep["grown_survival"]["d/kernel"]), 0.0)
    self.assertEqual((int(rep["total"]["grown_alive"]),
                      int(rep["total"]["grown_kept"])), (2, 0))
    # Grown synapse [0,0] trained to 6.0: 1 - I = 0.6827, k = floor(6 *
    # 0.3187) = 1, the smallest is [1,1]: [0,0] survives, [1,1] does not.
    state2 = state.replace(params={"d": {"kernel": w.at[0, 0].set(6.0)}})
    _, rep = _end_iteration(algo, state2)
    self.assertEqual(float(rep["total"]["grown_survival"]), 0.5)
    self.assertEqual(S.flatten_report(rep)["grown_survival/d/kernel"], 0.5)
    # Nothing grown: undefined, logged as None (valid JSON).
    state3 = state.replace(sparsity=state.sparsity.replace(
        grown={"d": {"kernel": jnp.zeros_like(g)}}))
    _, rep = _end_iteration(algo, state3)
    self.assertIsNone(S.flatten_report(rep)["total/grown_survival"])
    # protect_grown keeps both.
    _, rep = _end_iteration(S.from_config(_config(protect_grown=True)), state)
    self.assertEqual(float(rep["total"]["grown_survival"]), 1.0)

  def test_protect_grown_and_mature(self):
    plain = S.from_config(_config())
    protect = S.from_config(_config(protect_grown=True))
    mature = S.from_config(_config(pq_weights="mature"))
    state = _state(plain)
    rewired, _ = _rewire(plain, state)
    grown = _np(rewired.sparsity.grown)
    n_grown = sum(int(g.sum()) for g in jax.tree.leaves(grown))
    self.assertGreater(n_grown, 0)
    # Grown synapses have |w| = 0: the plain net prune removes them first.
    pruned_plain, _ = _end_iteration(plain, rewired)
    survivors = sum(int((g & m).sum()) for g, m in zip(
        jax.tree.leaves(grown), jax.tree.leaves(_np(pruned_plain.masks))))
    self.assertLess(survivors, n_grown)
    # protect_grown keeps every one of them.
    pruned_prot, _ = _end_iteration(protect, rewired)
    survivors = sum(int((g & m).sum()) for g, m in zip(
        jax.tree.leaves(grown), jax.tree.leaves(_np(pruned_prot.masks))))
    self.assertEqual(survivors, n_grown)
    # The grown set is cleared at the boundary.
    self.assertEqual(_active(pruned_prot.sparsity.grown), 0)
    # "mature" excludes the fresh zeros from the PQ index.
    _, rep_active = _end_iteration(plain, rewired)
    _, rep_mature = _end_iteration(mature, rewired)
    w = rewired.params["Dense_0"]["kernel"]
    m = rewired.masks["Dense_0"]["kernel"]
    g = grown["Dense_0"]["kernel"]
    np.testing.assert_allclose(rep_mature["pq_index"]["Dense_0/kernel"],
                               pq.pq_index(w, m & ~g), rtol=1e-5)
    np.testing.assert_allclose(rep_active["pq_index"]["Dense_0/kernel"],
                               pq.pq_index(w, m), rtol=1e-5)
    self.assertLess(float(rep_mature["pq_index"]["Dense_0/kernel"]),
                    float(rep_active["pq_index"]["Dense_0/kernel"]))

  def test_shortfall_modes(self):
    # The head (128 x 10) is ERK-capped at density 1: no inactive synapse.
    params = {"fc1": {"kernel": jax.random.normal(jax.random.key(0),
                                                  (64, 64))},
              "head": {"kernel": jax.random.normal(jax.random.key(1),
                                                   (64, 4))}}
    for mode, want_drop in (("shrink", True), ("limit", False)):
      algo = S.from_config(_config(shortfall=mode))
      state = TrainState.create(apply_fn=None, params=params,
                                tx=TX["sgd_momentum"],
                                sparsity=algo.init(params, jax.random.key(2)))
      self.assertTrue(bool(jnp.all(state.masks["head"]["kernel"])))
      new, rep = _rewire(algo, state)
      drop = _active(state.masks) - _active(new.masks)
      self.assertEqual(drop, int(rep["total"]["grow_shortfall"]))
      self.assertEqual(drop > 0, want_drop)
      self.assertGreater(int(rep["grown"]["fc1/kernel"]), 0)

  def test_ratio_modes(self):
    const = S.from_config(_config(ratio="constant", constant_ratio=0.25))
    state = _state(const)
    _, rep = _rewire(const, state)
    np.testing.assert_allclose(rep["ratio"]["Dense_0/kernel"], 0.25)
    m = state.masks["Dense_0"]["kernel"]
    self.assertEqual(int(rep["pruned"]["Dense_0/kernel"]),
                     int(0.25 * int(np.sum(m))))
    cos = S.from_config(_config(ratio="cosine", cosine_ratio=0.4, rewire_end=100))
    state = _state(cos)
    for step, want in ((0, 0.4), (50, 0.2), (100, 0.0), (150, 0.0)):
      _, rep = _rewire(cos, state.replace(step=jnp.asarray(step, jnp.int32)))
      np.testing.assert_allclose(rep["ratio"]["Conv_0/kernel"], want,
                                 atol=1e-6)
    _, rep = _rewire(cos, state.replace(step=jnp.asarray(100, jnp.int32)))
    self.assertEqual(int(rep["total"]["pruned"]), 0)

  def test_stochastic_rounding(self):
    algo = S.from_config(_config(rounding="stochastic", ratio="constant",
                            constant_ratio=0.1))
    state = _state(algo)
    m = state.masks["Dense_0"]["kernel"]
    d = int(np.sum(m))
    seen = set()
    for i in range(12):
      _, rep = _rewire(algo, state.replace(rng=jax.random.key(i)))
      seen.add(int(rep["pruned"]["Dense_0/kernel"]))
    lo = int(np.floor(0.1 * d))
    self.assertTrue(seen <= {lo, lo + 1})
    self.assertLen(seen, 2)

  def test_no_retrace_across_rewiring_steps(self):
    algo = S.from_config(_config(scope="neuron"))
    state = _state(algo)
    @jax.jit
    @chex.assert_max_traces(n=1)
    def fn(state):
      return TS.rewire(algo, state)

    pruned = []
    for i in range(4):
      fresh = jax.tree.map(
          lambda w, i=i: jax.random.normal(jax.random.key(i), w.shape) * (
              1 + 3 * (jnp.arange(w.size).reshape(w.shape) % (i + 2) == 0)),
          state.params)
      state = state.replace(params=M.apply_masks(fresh, state.masks))
      state, rep = fn(state)
      pruned.append(int(rep["total"]["pruned"]))
    self.assertGreater(len(set(pruned)), 1)   # counts really changed


class BaselinesTest(parameterized.TestCase):

  def test_set_random_growth_constant_density(self):
    algo = S.from_config(_config(algorithm="set"), total_steps=100)  # end 75
    state = _state(algo, tx="sgd")   # no momentum needed
    new, rep = _rewire(algo, state)
    np.testing.assert_allclose(rep["ratio"]["Dense_0/kernel"], 0.3 * 0.5 * (
        1 + np.cos(np.pi * 2 / 75)), rtol=1e-5)
    self.assertEqual(_active(new.masks), _active(state.masks))
    self.assertGreater(int(rep["total"]["grown"]), 0)

  def test_set_mocanu_constant_drop_fraction(self):
    algo = S.from_config(_config(algorithm="set_mocanu"))
    self.assertEqual((algo.config.ratio, algo.config.constant_ratio,
                      algo.config.grow, algo.config.net_prune),
                     ("constant", 0.3, "random", False))
    self.assertEqual(S.from_config(_config(algorithm="esl")).config.constant_ratio,
                     0.15)
    state = _state(algo, tx="sgd")
    new, rep = _rewire(algo, state)
    np.testing.assert_allclose(rep["ratio"]["Dense_0/kernel"], 0.3)
    # Dense_0 32x10 ERK at 0.5: d active, floor(0.3 * d) rewired.
    d = int(np.sum(state.masks["Dense_0"]["kernel"]))
    self.assertEqual(int(rep["pruned"]["Dense_0/kernel"]), int(0.3 * d))
    self.assertEqual(_active(new.masks), _active(state.masks))

  def test_growth_ties_are_broken_at_random_by_default(self):
    # All growth scores 0 (silent presynaptic neurons give exact zeros):
    # index order would grow the first inactive positions of the kernel.
    params = {"d": {"kernel": jax.random.normal(jax.random.key(0),
                                                (64, 4))}}
    m = np.zeros((64, 4), bool)
    m[::2] = True
    masks = {"d": {"kernel": jnp.asarray(m)}}
    for tiebreak, first_rows in ((True, False), (False, True)):
      algo = S.from_config(_config(random_tiebreak=tiebreak))
      self.assertEqual(S.from_config(_config()).config.random_tiebreak, True)
      state = TrainState.create(
          apply_fn=None, params=params, tx=optax.sgd(0.1, momentum=0.9),
          sparsity=algo.init(params, jax.random.key(1)).replace(
              masks=masks, grown={"d": {"kernel": jnp.zeros((64, 4), bool)}}),
          rng=jax.random.key(3))
      _, rep = _rewire(algo, state)
      k = int(rep["grown"]["d/kernel"])
      self.assertGreater(k, 10)
      new, _ = _rewire(algo, state)
      grown = np.flatnonzero(np.asarray(new.masks["d"]["kernel"]) & ~m)
      inactive = np.flatnonzero(~m)
      self.assertEqual(len(grown), k)
      self.assertEqual(np.array_equal(grown, inactive[:k]), first_rows)

  def test_rigl_gradient_growth(self):
    algo = S.from_config(_config(algorithm="rigl"), total_steps=100)
    state = _state(algo)
    grads = jax.tree.map(jnp.zeros_like, state.params)
    m = np.asarray(state.masks["Dense_0"]["kernel"])
    target = tuple(int(i) for i in np.argwhere(~m)[0])
    g = np.zeros(m.shape, np.float32)
    g[target] = 9.0
    grads["Dense_0"]["kernel"] = jnp.asarray(g)
    new, _ = _rewire(algo, state, grads)
    self.assertTrue(bool(new.masks["Dense_0"]["kernel"][target]))

  def test_gmp_schedule(self):
    algo = S.from_config(_config(algorithm="gmp"), total_steps=100)  # end 75
    self.assertEqual((algo.config.target_density, algo.config.rewire_end),
                     (0.1, 75))
    state = _state(algo)
    self.assertEqual(_active(state.masks), 144 + 320)
    for step, density in ((30, 0.1 + 0.9 * 0.6**3), (75, 0.1)):
      state, rep = _rewire(algo, state.replace(step=jnp.asarray(step)))
      self.assertEqual(int(rep["active"]["Conv_0/kernel"]),
                       round(density * 144))
      self.assertEqual(int(rep["active"]["Dense_0/kernel"]),
                       round(density * 320))
    np.testing.assert_allclose(schedules.gmp_density(0, target=0.2, start=0, end=100),
                               1.0)
    np.testing.assert_allclose(
        schedules.gmp_density(150, target=0.2, start=50, end=100), 0.2)

  def test_sap_prunes_and_rewinds(self):
    algo = S.from_config(_config(algorithm="sap"), total_steps=100)
    params = _params()
    state = _state(algo)
    w = np.asarray(state.params["Dense_0"]["kernel"])
    k = int(np.floor(pq.rewiring_ratio(w) * w.size))
    new, rep = _end_iteration(algo, state)
    self.assertEqual(int(rep["pruned"]["Dense_0/kernel"]), k)
    m = np.asarray(new.masks["Dense_0"]["kernel"])
    np.testing.assert_array_equal(new.params["Dense_0"]["kernel"],
                                  np.where(m, params["Dense_0"]["kernel"], 0))
    np.testing.assert_array_equal(new.params["BatchNorm_0"]["scale"],
                                  params["BatchNorm_0"]["scale"])
    self.assertGreater(np.abs(state.opt_state[0].trace["Dense_0"]["kernel"])
                       .max(), 0)
    self.assertEqual(np.abs(new.opt_state[0].trace["Dense_0"]["kernel"])
                     .max(), 0)
    # The pruned ones were the smallest trained magnitudes.
    self.assertLessEqual(np.max(np.abs(w[~m])), np.min(np.abs(w[m])))

  def test_static_and_dense_do_not_change(self):
    for name in ("static", "dense"):
      algo = S.from_config(_config(algorithm=name), total_steps=100)
      state = _state(algo)
      new, rep = _end_iteration(algo, state)
      chex.assert_trees_all_equal(new.params, state.params)
      self.assertEqual(int(rep["total"]["pruned"]), 0)
