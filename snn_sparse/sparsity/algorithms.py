"""The registry of sparsity algorithms, behind one small interface.

Every algorithm is built from a ``sparsity`` ConfigDict (see
:func:`default_sparsity_config`) by :func:`create` and exposes:

* ``init_masks(params, key) -> masks``: the initial mask tree (``None`` for
  ``dense``).
* ``init(params, masks) -> algo_state``: the algorithm's own state, a pytree
  stored in ``TrainState.sparsity_state`` and checkpointed with it.
* ``is_rewire_step(step) -> bool``: host-side; whether to call ``rewire``
  after the optimizer step that brought ``state.step`` to ``step``.
* ``rewire(state, grads=None) -> (state, report)``: the in-iteration event
  (jitted). ``grads`` are the dense gradients w.r.t. the effective weights;
  they are only required when ``needs_grads`` is True (``grow="gradient"``).
* ``end_iteration(state, grads=None) -> (state, report)``: the event at each
  iteration boundary (jitted): the net prune of ``pq_dst``, the prune and
  rewind of ``sap``; a no-op (stats only) for the others.
* ``validate(state)``: host-side checks to run once after building the state
  (masks present, the optimizer has momentum when growth needs it).

The optax-style ``update(...) -> (masks, algo_state, report)`` of the design
acts here on the whole ``TrainState``, because rewiring also edits the
params (pruned and grown weights become 0, ``sap`` rewinds them) and the
optimizer state (grown synapses' moments are reset).

Harness call sequence::

    algo = algorithms.create(config.sparsity, total_steps=total_steps)
    masks = algo.init_masks(params, key)
    state = TrainState.create(apply_fn=..., params=params, tx=tx, masks=masks,
                              sparsity_state=algo.init(params, masks), ...)
    algo.validate(state)
    for iteration in 1..num_iterations:
      for each batch:
        state = train_step(state, batch)          # dense grads, re-mask
        if algo.is_rewire_step(int(state.step)):
          grads = dense_grads_of_this_batch if algo.needs_grads else None
          state, report = algo.rewire(state, grads)
      state, report = algo.end_iteration(state)
      evaluate and log report

Reports are dicts of arrays (see :func:`flatten_report` for logging)::

    {"pq_index": {path: f32}, "ratio": {path: f32}, "pruned": {path: i32},
     "grown": {path: i32}, "active": {path: i32}, "density": {path: f32},
     "total": {"pruned", "grown", "grow_shortfall", "active", "size",
               "density"}}

``pq_index`` and ``ratio`` are the values used for the event, averaged over
the units of a layer in ``neuron`` scope (the global value in ``global``
scope); ``density``/``active`` are after the event, over masked kernels.

**Algorithms** (``sparsity.algorithm``) and the fields they read. Fields set
to ``None`` in the default config take the algorithm's own default, shown
here; an explicit value is honoured by every algorithm that reads it.

=========  ==================================================================
pq_dst     Shen et al. (ICLR 2025). Init ``erk`` at ``init_density``.
           Every ``rewire_every`` steps (not in an iteration's last
           ``rewire_every`` steps): per unit (``scope``),
           ``k = floor(c*d)`` (``rounding``) with ``c`` from ``ratio``
           (``pq``); prune the ``k`` smallest ``|w|``, grow ``k`` by
           ``grow`` (``momentum``), no regrowth in the same step. At each
           iteration boundary, if ``net_prune`` (True): remove ``floor(c*d)``
           more, no growth. Knobs: ``pq_weights``, ``protect_grown``,
           ``rounding``, ``bound_rounding``, ``p, q, alpha_r, gamma, beta``.
esl        ESL-SNN: as pq_dst with ``ratio="constant"``
           (``constant_ratio`` 0.15), ``net_prune=False``: constant density.
           Growth ``momentum`` (our choice; set ``grow`` to change it).
set        SET as RigL's paper and code run it: ``ratio="cosine"``
           (``cosine_ratio`` decayed to 0 at ``rewire_end``),
           ``grow="random"``, grown weights start at 0, ``net_prune=False``.
set_mocanu SET with Mocanu et al.'s (2018) original schedule: a constant
           drop fraction (``ratio="constant"``, ``constant_ratio`` 0.3) at
           every event; otherwise as ``set`` (grown weights start at 0).
rigl       RigL: ``ratio="cosine"``, ``grow="gradient"``,
           ``allow_regrow=True``, ``net_prune=False``; needs grads. A
           synapse dropped and regrown in the same event keeps its weight
           and optimizer moments and is not counted as grown or pruned
           (RigL's ``reinit_when_same=False``).
static     Fixed ``init`` mask at ``init_density``; no events.
gmp        Gradual magnitude pruning (Zhu & Gupta 2017) from dense to
           ``target_density``: at every ``rewire_every`` steps in
           ``(rewire_start, rewire_end]`` (and at ``rewire_end``) prune each
           unit to ``target + (1 - target) * (1 - t)**3`` of its size,
           ``t = (step - start) / (end - start)``. Init ``dense``.
sap        Diao et al.'s iterative PQ pruning: at each iteration boundary
           prune ``floor(c*d)`` per unit, then rewind the surviving weights
           (and all other params; not BatchNorm statistics) to their values
           at ``init`` and, if ``sap_reset_optimizer``, re-initialise the
           optimizer. Its learning-rate schedule restarts each iteration
           (``restarts_schedule``; the trainer's
           ``optimizer.restart_each_iteration`` default), as Diao's code
           re-creates it per iteration. Init ``dense``.
dense      No masks; events only report.
=========  ==================================================================

**When in-iteration events fire.** ``create(..., steps_per_iteration=S)``
tells an algorithm the length of the two-stage loop's iterations. An
in-iteration event (``pq_dst``, ``esl``, ``set``, ``rigl``, ``gmp``) then
fires after step ``s`` when ``s`` is a multiple of ``rewire_every``, lies in
``(rewire_start, rewire_end]``, and at least ``rewire_every`` steps of its
iteration remain (``(-s) % S >= rewire_every``). So the network that is
evaluated and net-pruned at an iteration's end has trained for at least
``rewire_every`` steps since its last rewiring: synapses grown at 0 have
had time to grow, and the net prune and the evaluation see a recovered
network. With ``rewire_every`` = one epoch and 5 epochs per iteration,
events fire after epochs 1-4 of each iteration, never after epoch 5.
``rewire_every >= S`` would leave no event at all and is refused; ``gmp``'s
final event is moved back to the last allowed step before ``rewire_end``.
Without ``steps_per_iteration`` there are no iterations and no quiet steps.

``pq_dst`` knobs (defaults: the paper's literal reading):

* ``pq_weights="active"`` computes the PQ index over all active synapses;
  ``"mature"`` excludes synapses grown since the last iteration boundary,
  i.e. the last net prune (tracked in ``algo_state["grown"]``).
* ``protect_grown=True`` exempts synapses grown in the current iteration
  from its net prune; the count is then ``floor(c * d_eligible)`` over the
  unprotected active synapses.
* ``rounding="floor"`` or ``"stochastic"`` (see :func:`pq.rewire_count`).
* ``bound_rounding="exact"`` uses the real-valued retained bound ``r``;
  ``"ceil"`` rounds it up to ``ceil(r)`` first, as Diao et al.'s code does
  (``c = gamma * (1 - ceil(r)/d)``; see :func:`pq.ratio_from_index`).

The ``iteration_end`` report of a net prune also holds ``grown_survival``
(per layer, and in ``total``): of the synapses grown during the iteration
and still active at its end, the fraction that survives the net prune
(``None``/NaN where none were grown), with the counts
``total/grown_alive`` and ``total/grown_kept``. It says whether regrowth
ever becomes a lasting connection.

In-iteration rewiring of every constant-density algorithm (``pq_dst``,
``esl``, ``set``, ``rigl``): a unit with fewer inactive synapses than it
prunes (e.g. a layer ERK capped at density 1) cannot regrow them all when
regrowth of just-pruned synapses is off. ``shortfall="limit"`` (default)
prunes only as many as can be regrown, so the in-iteration events keep
density exactly constant and density changes only at net prunes (a fully
dense unit is left alone until a net prune frees some of its synapses).
``shortfall="shrink"`` prunes ``k`` anyway and grows what it can; the
report's ``total/grow_shortfall`` counts the difference and density falls
slightly (mostly once, at the first event).

Adding an algorithm: subclass :class:`SparsityAlgorithm`, override
``_init_state``, ``_rewire`` and/or ``_end_iteration`` (pure functions of the
``TrainState``; use :class:`pq.UnitLayout` and :mod:`rewire`), list the
config fields it reads, and register it in ``_REGISTRY`` and ``_PRESETS``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity import pq as pq_lib
from snn_sparse.sparsity import rewire as rewire_lib

PyTree = Any
Report = dict[str, Any]

ALGORITHMS = ("pq_dst", "esl", "set", "set_mocanu", "rigl", "static", "gmp",
              "sap", "dense")
RATIO_MODES = ("pq", "constant", "cosine")
PQ_WEIGHTS = ("active", "mature")
SHORTFALL_MODES = ("limit", "shrink")
BOUND_ROUNDINGS = ("exact", "ceil")


# ---------------------------------------------------------------------------
# Configuration.
# ---------------------------------------------------------------------------


# A ``None`` default that the command line can still override with a value.
_optional = ml_collections.config_dict.placeholder


def default_sparsity_config() -> ml_collections.ConfigDict:
  """The ``sparsity`` config with every field and its default.

  ``None`` means "the algorithm's own default" (see the module docstring);
  for ``pq_dst`` these resolve to the method's defaults: ``init="erk"``,
  ``ratio="pq"``, ``grow="momentum"``, ``allow_regrow=False``,
  ``net_prune=True``. :attr:`SparsityAlgorithm.config` holds the resolved
  values.
  """
  c = ml_collections.ConfigDict()
  c.algorithm = "pq_dst"          # one of ALGORITHMS
  c.scope = "layer"               # layer | neuron | global
  # Initial masks.
  c.init = _optional(str)         # er | erk | uniform | dense
  c.init_density = 0.5            # target density over masked kernels
  c.dense_first = False           # keep the first prunable kernel unmasked
  c.dense_last = False            # keep the last prunable kernel unmasked
  c.pattern = masks_lib.PRUNABLE_PATTERN
  # PQ index and ratio (Diao et al.'s defaults).
  c.p = 0.5
  c.q = 1.0
  c.alpha_r = 0.001
  c.gamma = 1.0
  c.beta = 0.9
  c.ratio = _optional(str)        # pq | constant | cosine
  c.constant_ratio = _optional(float)  # ratio="constant": esl 0.15 (~ PQ's c
                                  # for Gaussians), set_mocanu 0.3
  c.cosine_ratio = 0.3            # ratio="cosine": c at rewire_start
  c.rounding = "floor"            # floor | stochastic
  c.bound_rounding = "exact"      # exact | ceil (Diao et al.'s ceil(r))
  # Growth.
  c.grow = _optional(str)         # momentum | gradient | random
  c.allow_regrow = _optional(bool)  # may a pruned synapse regrow at once?
  c.adam_eps = 1e-8               # eps in mu / (sqrt(nu) + eps)
  c.random_tiebreak = True        # random (not index) order for growth ties
  c.shortfall = "limit"           # limit | shrink: a unit with too few
                                  # inactive synapses to regrow k (see top)
  # When events happen (in optimizer steps).
  c.rewire_every = 100            # in-iteration event period; 0 = never.
                                  # No event in the last rewire_every steps
                                  # of an iteration (see top).
  c.rewire_start = 0              # no events at steps <= rewire_start
  c.rewire_end = 0                # no events after it; 0 = none, or (when
                                  # an end is needed) fraction * total_steps
  c.rewire_end_fraction = 0.75    # end = fraction * total_steps if needed
  # pq_dst knobs.
  c.net_prune = _optional(bool)   # net prune at iteration boundaries
  c.pq_weights = "active"         # active | mature
  c.protect_grown = False
  # gmp / sap.
  c.target_density = 0.1          # gmp's final density
  c.sap_reset_optimizer = True    # sap: re-init the optimizer after rewind
  return c


_PRESETS = {
    "pq_dst": dict(init="erk", ratio="pq", grow="momentum",
                   allow_regrow=False, net_prune=True),
    "esl": dict(init="erk", ratio="constant", grow="momentum",
                allow_regrow=False, net_prune=False),
    "set": dict(init="erk", ratio="cosine", grow="random",
                allow_regrow=False, net_prune=False),
    "set_mocanu": dict(init="erk", ratio="constant", constant_ratio=0.3,
                       grow="random", allow_regrow=False, net_prune=False),
    "rigl": dict(init="erk", ratio="cosine", grow="gradient",
                 allow_regrow=True, net_prune=False),
    "static": dict(init="erk", ratio="pq", grow="momentum",
                   allow_regrow=False, net_prune=False),
    "gmp": dict(init="dense", ratio="pq", grow="momentum",
                allow_regrow=False, net_prune=False),
    "sap": dict(init="dense", ratio="pq", grow="momentum",
                allow_regrow=False, net_prune=False),
    "dense": dict(init="dense", ratio="pq", grow="momentum",
                  allow_regrow=False, net_prune=False),
}
# Fields whose default is shared by every algorithm that does not set it.
_COMMON_DEFAULTS = dict(constant_ratio=0.15)

_CHOICES = {
    "algorithm": ALGORITHMS,
    "scope": pq_lib.SCOPES,
    "init": masks_lib.INIT_METHODS,
    "ratio": RATIO_MODES,
    "rounding": pq_lib.ROUNDINGS,
    "grow": rewire_lib.GROW_METHODS,
    "pq_weights": PQ_WEIGHTS,
    "shortfall": SHORTFALL_MODES,
    "bound_rounding": BOUND_ROUNDINGS,
}
_BOOLS = ("dense_first", "dense_last", "allow_regrow", "random_tiebreak",
          "net_prune", "protect_grown", "sap_reset_optimizer")
_INTS = ("rewire_every", "rewire_start", "rewire_end")


def _fail(field, msg):
  raise ValueError(f"sparsity.{field}: {msg}")


def _number(cfg, field, lo=None, hi=None, lo_open=False, hi_open=False):
  v = cfg[field]
  if isinstance(v, bool) or not isinstance(v, (int, float)):
    _fail(field, f"must be a number, got {v!r}.")
  bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
  bad_hi = hi is not None and (v >= hi if hi_open else v > hi)
  if bad_lo or bad_hi:
    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    _fail(field, f"must be in {lb}{lo if lo is not None else '-inf'}, "
          f"{hi if hi is not None else 'inf'}{rb}, got {v!r}.")


def resolve_config(config, *, total_steps: int | None = None,
                   steps_per_iteration: int | None = None
                   ) -> ml_collections.FrozenConfigDict:
  """Validates a ``sparsity`` config and fills in the algorithm's defaults.

  Args:
    config: a ConfigDict or dict with (a subset of) the fields of
      :func:`default_sparsity_config`; missing fields take their defaults.
    total_steps: total optimizer steps of the run; used to derive
      ``rewire_end = round(rewire_end_fraction * total_steps)`` when an
      algorithm needs an end (cosine ratio, ``gmp``) and ``rewire_end`` is 0.
    steps_per_iteration: optimizer steps per iteration of the two-stage
      loop, if there is one; used to check that in-iteration events can fire
      (``rewire_every`` < ``steps_per_iteration``) and to move ``gmp``'s
      derived final event out of an iteration's quiet steps (see the module
      docstring).

  Raises:
    ValueError: naming the field, for an unknown field, an unknown choice
      (listing the valid ones) or an out-of-range value.
  """
  defaults = default_sparsity_config()
  if config is None:
    given = {}
  elif isinstance(config, (ml_collections.ConfigDict, Mapping)):
    given = dict(config.items())
  else:
    raise ValueError(f"sparsity: expected a ConfigDict or dict, got "
                     f"{type(config).__name__}.")
  unknown = sorted(set(given) - set(defaults.keys()))
  if unknown:
    raise ValueError(
        f"sparsity: unknown field(s) {unknown}; valid fields are "
        f"{sorted(defaults.keys())}.")
  cfg = dict(defaults.items())
  cfg.update(given)
  algo = cfg["algorithm"]
  if algo not in ALGORITHMS:
    _fail("algorithm", f"must be one of {list(ALGORITHMS)}, got {algo!r}.")
  for field, value in {**_COMMON_DEFAULTS, **_PRESETS[algo]}.items():
    if cfg[field] is None:
      cfg[field] = value
  for field, choices in _CHOICES.items():
    if cfg[field] not in choices:
      _fail(field, f"must be one of {list(choices)}, got {cfg[field]!r}.")
  for field in _BOOLS:
    if not isinstance(cfg[field], (bool, np.bool_)):
      _fail(field, f"must be True or False, got {cfg[field]!r}.")
  for field in _INTS:
    v = cfg[field]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
      _fail(field, f"must be an integer >= 0, got {v!r}.")
  if not isinstance(cfg["pattern"], str):
    _fail("pattern", f"must be a regex string, got {cfg['pattern']!r}.")
  _number(cfg, "p", lo=0, lo_open=True)
  _number(cfg, "q")
  if not cfg["q"] > cfg["p"]:
    _fail("q", f"must be > p = {cfg['p']}, got {cfg['q']!r}.")
  _number(cfg, "alpha_r", lo=0)
  _number(cfg, "gamma", lo=0)
  _number(cfg, "beta", lo=0, hi=1)
  _number(cfg, "init_density", lo=0, hi=1, lo_open=True)
  _number(cfg, "target_density", lo=0, hi=1, lo_open=True)
  _number(cfg, "constant_ratio", lo=0, hi=1)
  _number(cfg, "cosine_ratio", lo=0, hi=1)
  _number(cfg, "rewire_end_fraction", lo=0, hi=1, lo_open=True)
  _number(cfg, "adam_eps", lo=0)

  needs_end = (algo == "gmp" or (algo in _DST and cfg["ratio"] == "cosine"))
  if cfg["rewire_end"] == 0 and needs_end:
    if total_steps is None:
      _fail("rewire_end",
            f"algorithm={algo!r} with ratio={cfg['ratio']!r} needs an end "
            "step: set sparsity.rewire_end, or pass total_steps to create() "
            "to use rewire_end_fraction * total_steps.")
    cfg["rewire_end"] = max(1, round(cfg["rewire_end_fraction"] * total_steps))
  if cfg["rewire_end"] and cfg["rewire_end"] <= cfg["rewire_start"]:
    _fail("rewire_end", f"must be > rewire_start = {cfg['rewire_start']}, "
          f"got {cfg['rewire_end']}.")
  if algo == "gmp" and cfg["rewire_every"] == 0:
    _fail("rewire_every", "gmp prunes every rewire_every steps; must be > 0.")
  every = cfg["rewire_every"]
  if steps_per_iteration and every and algo in _IN_ITERATION:
    if every >= steps_per_iteration:
      _fail("rewire_every",
            f"{every} >= the {steps_per_iteration} steps of an iteration: no "
            "in-iteration event could fire, since none fires in the last "
            "rewire_every steps of an iteration. Set it below "
            f"{steps_per_iteration}, or to 0 for no in-iteration events.")
    if algo == "gmp":
      quiet = every - steps_left(cfg["rewire_end"], steps_per_iteration)
      if quiet > 0:
        if "rewire_end" in given and given["rewire_end"]:
          _fail("rewire_end",
                f"{cfg['rewire_end']} lies in the last rewire_every = {every} "
                "steps of an iteration, where no event fires; set it to "
                f"{cfg['rewire_end'] - quiet} or earlier.")
        cfg["rewire_end"] -= quiet
  return ml_collections.FrozenConfigDict(cfg)


# ---------------------------------------------------------------------------
# Reports.
# ---------------------------------------------------------------------------


def steps_left(step: int, steps_per_iteration: int) -> int:
  """Steps of its iteration still to come after optimizer step ``step``.

  Iteration ``i`` is steps ``((i-1)*S, i*S]``; 0 at its last step.
  """
  return (-int(step)) % steps_per_iteration


def _zeros_like_masks(masks):
  return jax.tree.map(lambda m: None if m is None else jnp.zeros_like(m),
                      masks, is_leaf=masks_lib.is_none)


def _report(layout_masks, masks, *, pq_index, ratio, num_pruned,
            num_grown, shortfall=None) -> Report:
  """Builds the event report from per-layer values (see module docstring)."""
  if layout_masks is None:
    empty = {}
    zero = jnp.zeros((), jnp.int32)
    return {"pq_index": empty, "ratio": {}, "pruned": {}, "grown": {},
            "active": {}, "density": {},
            "total": {"pruned": zero, "grown": zero, "grow_shortfall": zero,
                      "active": zero, "size": zero,
                      "density": jnp.ones((), jnp.float32)}}
  layer = pq_lib.UnitLayout(layout_masks, "layer")
  kernels = layer.kernels(masks)
  active = {p: jnp.sum(m, dtype=jnp.int32) for p, m in kernels.items()}
  sizes = dict(zip(layer.paths, layer.sizes))
  density = {p: active[p].astype(jnp.float32) / sizes[p] for p in active}
  zero = jnp.zeros((), jnp.int32)
  tot_pruned = sum(num_pruned.values(), zero)
  tot_grown = sum(num_grown.values(), zero)
  tot_active = sum(active.values(), zero)
  tot_size = sum(sizes.values())
  return {
      "pq_index": pq_index,
      "ratio": ratio,
      "pruned": num_pruned,
      "grown": num_grown,
      "active": active,
      "density": density,
      "total": {
          "pruned": tot_pruned,
          "grown": tot_grown,
          "grow_shortfall": zero if shortfall is None else shortfall,
          "active": tot_active,
          "size": jnp.asarray(tot_size, jnp.int32),
          "density": tot_active.astype(jnp.float32) / max(tot_size, 1),
      },
  }


def flatten_report(report: Report) -> dict[str, float]:
  """Host-side: ``{"pq_index/Conv_0/kernel": 0.15, "total/density": ...}``.

  NaN (an undefined value, such as the survival of no grown synapses)
  becomes ``None``, so the log stays valid JSON.
  """
  out = {}
  for group, values in report.items():
    for name, v in values.items():
      v = np.asarray(jax.device_get(v))
      if v.dtype.kind == "f":
        v = np.where(np.isnan(v), None, v).astype(object)
      out[f"{group}/{name}"] = v.item() if v.size == 1 else v.tolist()
  return out


# ---------------------------------------------------------------------------
# Base class.
# ---------------------------------------------------------------------------


class SparsityAlgorithm:
  """Base class; see the module docstring for the interface.

  Attributes:
    name: registry name.
    config: the resolved, frozen ``sparsity`` config.
    needs_grads: whether ``rewire`` needs the dense gradients.
    has_rewire_event: whether ``is_rewire_step`` can ever be True.
    has_boundary_event: whether ``end_iteration`` changes the state.
    restarts_schedule: whether the learning-rate schedule should restart at
      each iteration (the default of ``optimizer.restart_each_iteration``).
    steps_per_iteration: the iteration length given to :func:`create`.
    rewire_fn, end_iteration_fn: the un-jitted pure functions behind
      ``rewire`` and ``end_iteration``.
  """

  name = "base"
  has_rewire_event = False
  has_boundary_event = False
  restarts_schedule = False
  steps_per_iteration = None

  def __init__(self, config: ml_collections.FrozenConfigDict):
    self.config = config
    self.scope = config.scope
    self.needs_grads = False
    self.rewire_fn = self._rewire_event
    self.end_iteration_fn = self._boundary_event
    # Jitted with the algorithm as a static argument: algorithms with equal
    # configs share compiled code.
    self._hash = hash((type(self), self.name, self.config))
    self.rewire = functools.partial(_jit_rewire, self)
    self.end_iteration = functools.partial(_jit_end_iteration, self)

  def __eq__(self, other):
    return (type(self) is type(other) and self.name == other.name
            and self.config == other.config)

  def __hash__(self):
    return self._hash

  def __repr__(self):
    return f"{type(self).__name__}(name={self.name!r})"

  # -- host side ------------------------------------------------------------

  def init_masks(self, params: PyTree, key: jax.Array) -> PyTree:
    """Initial mask tree (``config.init`` at ``config.init_density``)."""
    c = self.config
    return masks_lib.init_masks(
        params, method=c.init, density=c.init_density, key=key,
        pattern=c.pattern, dense_first=c.dense_first, dense_last=c.dense_last)

  def init(self, params: PyTree, masks: PyTree) -> PyTree:
    """The algorithm state (a pytree) for ``TrainState.sparsity_state``."""
    if masks is None:
      raise ValueError(f"sparsity.algorithm={self.name!r} needs masks; got "
                       "masks=None (use algo.init_masks).")
    return self._init_state(params, masks)

  def is_rewire_step(self, step: int) -> bool:
    """Whether to call ``rewire`` once ``state.step == step`` (host-side)."""
    if not self.has_rewire_event:
      return False
    c = self.config
    step = int(step)
    if c.rewire_every <= 0 or step <= c.rewire_start:
      return False
    if c.rewire_end and step > c.rewire_end:
      return False
    if self.in_quiet_steps(step):
      return False
    return step % c.rewire_every == 0

  def in_quiet_steps(self, step: int) -> bool:
    """Whether ``step`` is among the last ``rewire_every`` of its iteration.

    No in-iteration event fires there (see the module docstring); always
    False without ``steps_per_iteration``.
    """
    spi = self.steps_per_iteration
    return bool(spi) and steps_left(step, spi) < self.config.rewire_every

  def validate(self, state) -> None:
    """Host-side checks on a freshly built ``TrainState``; raises ValueError."""
    if state.masks is None:
      raise ValueError(f"sparsity.algorithm={self.name!r} needs masks, but "
                       "state.masks is None.")
    if jax.tree.structure(
        jax.tree.map(lambda m: 0, state.masks, is_leaf=masks_lib.is_none)
    ) != jax.tree.structure(jax.tree.map(lambda w: 0, state.params)):
      raise ValueError("state.masks does not have the structure of params.")
    self._check_sparsity_state(state)

  def _check_sparsity_state(self, state) -> None:
    want = jax.eval_shape(self.init, state.params, state.masks)
    if jax.tree.structure(want) != jax.tree.structure(state.sparsity_state):
      raise ValueError(
          f"state.sparsity_state does not match algorithm {self.name!r}; "
          "build it with sparsity_state=algo.init(params, masks).")

  # -- jitted events --------------------------------------------------------

  def _rewire_event(self, state, grads=None):
    return self._rewire(state, grads)

  def _boundary_event(self, state, grads=None):
    return self._end_iteration(state, grads)

  # -- to override ----------------------------------------------------------

  def _init_state(self, params, masks) -> PyTree:
    del params, masks
    return {"iteration": jnp.zeros((), jnp.int32)}

  def _rewire(self, state, grads):
    del grads
    return state, self._stats_report(state)

  def _end_iteration(self, state, grads):
    del grads
    return self._next_iteration(state), self._stats_report(state)

  # -- helpers --------------------------------------------------------------

  def _next_iteration(self, state, **updates):
    s = dict(state.sparsity_state)
    if "iteration" in s:
      s["iteration"] = s["iteration"] + 1
    s.update(updates)
    return state.replace(sparsity_state=s)

  def _layout(self, masks, scope=None):
    return pq_lib.UnitLayout(masks, scope or self.scope)

  def _pq_rows(self, layout, w_rows, m_rows):
    c = self.config
    return {n: pq_lib.pq_index_rows(w_rows[n], m_rows[n], p=c.p, q=c.q)
            for n in layout.names}

  def _layer_means(self, layout, values):
    return layout.per_layer(values, "mean")

  def _stats_report(self, state) -> Report:
    masks = state.masks
    if masks is None:
      full = masks_lib.full_masks(state.params, pattern=self.config.pattern)
      if not masks_lib.masked_paths(full):
        return _report(None, None, pq_index={}, ratio={}, num_pruned={},
                       num_grown={})
      masks_for_stats = full
    else:
      masks_for_stats = masks
    layout = self._layout(masks_for_stats)
    index = self._pq_rows(layout, layout.rows(state.params),
                          layout.rows(masks_for_stats))
    paths = layout.paths
    zero_i = jnp.zeros((), jnp.int32)
    return _report(masks_for_stats, masks_for_stats,
                   pq_index=self._layer_means(layout, index),
                   ratio={p: jnp.zeros((), jnp.float32) for p in paths},
                   num_pruned={p: zero_i for p in paths},
                   num_grown={p: zero_i for p in paths})


@functools.partial(jax.jit, static_argnums=0)
def _jit_rewire(algo, state, grads=None):
  return algo.rewire_fn(state, grads)


@functools.partial(jax.jit, static_argnums=0)
def _jit_end_iteration(algo, state, grads=None):
  return algo.end_iteration_fn(state, grads)


# ---------------------------------------------------------------------------
# Dynamic sparse training: pq_dst, esl, set, rigl.
# ---------------------------------------------------------------------------


class DynamicSparse(SparsityAlgorithm):
  """Prune-and-regrow at constant density, optional net prune at boundaries.

  One engine for ``pq_dst``, ``esl``, ``set`` and ``rigl``; they differ only
  in their resolved config (ratio mode, growth criterion, regrowth, net
  prune). State: ``{"grown": bool tree of synapses grown since the last
  iteration boundary, "iteration": int32}``.
  """

  has_rewire_event = True

  def __init__(self, config, name):
    self.name = name
    super().__init__(config)
    self.needs_grads = config.grow == "gradient"
    self.has_boundary_event = bool(config.net_prune)

  def _init_state(self, params, masks):
    del params
    return {"grown": _zeros_like_masks(masks),
            "iteration": jnp.zeros((), jnp.int32)}

  def validate(self, state):
    super().validate(state)
    if self.config.grow == "momentum":
      rewire_lib.optimizer_momentum(state.opt_state, state.params,
                                    eps=self.config.adam_eps)

  def _ratio_rows(self, state, layout, index, d):
    """Per-unit ratio ``c`` ``{name: (U,)}`` for the configured ratio mode.

    ``d``: the active counts ``{name: (U,)}`` the count will be taken of.
    """
    c = self.config
    if c.ratio == "pq":
      return _pq_ratio_rows(c, layout, index, d)
    if c.ratio == "constant":
      value = jnp.asarray(c.constant_ratio, jnp.float32)
    else:
      value = cosine_ratio(state.step, c.cosine_ratio, c.rewire_start,
                           c.rewire_end)
    return {n: jnp.broadcast_to(value, index[n].shape) for n in layout.names}

  def _counts(self, layout, ratio, d, key):
    c = self.config
    return {n: pq_lib.rewire_count(ratio[n], d[n], rounding=c.rounding,
                                   key=jax.random.fold_in(key, i))
            for i, n in enumerate(layout.names)}

  def _rewire(self, state, grads):
    c = self.config
    if self.needs_grads and grads is None:
      raise ValueError(
          f"sparsity.grow='gradient' ({self.name}) needs the dense gradients:"
          " call rewire(state, grads).")
    rng, k_count, k_score, k_tie = jax.random.split(state.rng, 4)
    state = state.replace(rng=rng)
    masks = state.masks
    layout = self._layout(masks)
    w = layout.rows(state.params)
    m = layout.rows(masks)
    g = layout.rows(state.sparsity_state["grown"])
    pq_m = ({n: m[n] & ~g[n] for n in layout.names}
            if c.pq_weights == "mature" else m)
    index = self._pq_rows(layout, w, pq_m)
    d = {n: jnp.sum(m[n], axis=1, dtype=jnp.int32) for n in layout.names}
    ratio = self._ratio_rows(state, layout, index, d)
    k = self._counts(layout, ratio, d, k_count)
    scores = layout.rows(rewire_lib.growth_scores(
        c.grow, state.params, masks, opt_state=state.opt_state, grads=grads,
        key=k_score, eps=c.adam_eps))
    new, pruned, grown = {}, {}, {}
    for i, n in enumerate(layout.names):
      tb = (jax.random.uniform(jax.random.fold_in(k_tie, i), m[n].shape)
            if c.random_tiebreak else None)
      new[n], pruned[n], grown[n] = rewire_lib.prune_and_grow_rows(
          w[n], m[n], k[n], scores[n], allow_regrow=c.allow_regrow,
          tiebreak_rows=tb, limit_to_candidates=c.shortfall == "limit")
    result = rewire_lib.make_result(layout, new, pruned, grown,
                                    regrow=True)
    state = rewire_lib.apply_rewiring(state, result)
    grown_since = jax.tree.map(
        lambda old, gr, mk: None if mk is None else (old | gr) & mk,
        state.sparsity_state["grown"], result.grown, result.masks,
        is_leaf=masks_lib.is_none)
    state = state.replace(sparsity_state={**state.sparsity_state,
                                          "grown": grown_since})
    report = _report(masks, result.masks,
                     pq_index=self._layer_means(layout, index),
                     ratio=self._layer_means(layout, ratio),
                     num_pruned=result.num_pruned,
                     num_grown=result.num_grown, shortfall=result.shortfall)
    return state, report

  def _end_iteration(self, state, grads):
    del grads
    c = self.config
    if not c.net_prune:
      report = self._stats_report(state)
      return self._next_iteration(
          state, grown=_zeros_like_masks(state.masks)), report
    rng, k_count = jax.random.split(state.rng)
    state = state.replace(rng=rng)
    masks = state.masks
    layout = self._layout(masks)
    w = layout.rows(state.params)
    m = layout.rows(masks)
    g = layout.rows(state.sparsity_state["grown"])
    mature = {n: m[n] & ~g[n] for n in layout.names}
    pq_m = mature if c.pq_weights == "mature" else m
    eligible = mature if c.protect_grown else m
    index = self._pq_rows(layout, w, pq_m)
    d = {n: jnp.sum(eligible[n], axis=1, dtype=jnp.int32)
         for n in layout.names}
    ratio = self._ratio_rows(state, layout, index, d)
    k = self._counts(layout, ratio, d, k_count)
    pruned = {n: rewire_lib.prune_rows(w[n], eligible[n], k[n])
              for n in layout.names}
    new = {n: m[n] & ~pruned[n] for n in layout.names}
    grown = {n: jnp.zeros_like(m[n]) for n in layout.names}
    result = rewire_lib.make_result(layout, new, pruned, grown,
                                    regrow=False)
    grown_before = state.sparsity_state["grown"]
    state = rewire_lib.apply_rewiring(state, result)
    state = self._next_iteration(state, grown=_zeros_like_masks(result.masks))
    report = _report(masks, result.masks,
                     pq_index=self._layer_means(layout, index),
                     ratio=self._layer_means(layout, ratio),
                     num_pruned=result.num_pruned,
                     num_grown=result.num_grown, shortfall=result.shortfall)
    survival = grown_survival(layout, grown_before, masks, result.masks)
    report["grown_survival"] = survival.pop("per_layer")
    report["total"].update(survival)
    return state, report


def _pq_ratio_rows(c, layout, index, d):
  """PQ ratio ``c`` per unit ``{name: (U,)}`` from the index and counts."""
  return {n: pq_lib.ratio_from_index(
      index[n], p=c.p, q=c.q, alpha_r=c.alpha_r, gamma=c.gamma, beta=c.beta,
      d=d[n], bound_rounding=c.bound_rounding) for n in layout.names}


def grown_survival(layout, grown, masks_before, masks_after) -> Report:
  """How many synapses grown since the last boundary survive a net prune.

  Args:
    layout: the :class:`pq.UnitLayout` of the masks.
    grown: bool mask-structured tree, synapses grown since the last
      iteration boundary (``algo_state["grown"]``).
    masks_before, masks_after: the masks around the net prune.

  Returns:
    ``{"per_layer": {path: f32}, "grown_alive": i32, "grown_kept": i32,
    "grown_survival": f32}``: per layer and in total, the fraction of the
    grown synapses active before the prune that are still active after it
    (NaN where there were none), and the total counts.
  """
  g, before, after = (layout.kernels(t) for t in (grown, masks_before,
                                                  masks_after))
  alive = {p: jnp.sum(g[p] & before[p], dtype=jnp.int32) for p in g}
  kept = {p: jnp.sum(g[p] & after[p], dtype=jnp.int32) for p in g}

  def fraction(k, a):
    return jnp.where(a > 0, k / jnp.maximum(a, 1), jnp.nan).astype(
        jnp.float32)

  zero = jnp.zeros((), jnp.int32)
  tot_alive, tot_kept = sum(alive.values(), zero), sum(kept.values(), zero)
  return {"per_layer": {p: fraction(kept[p], alive[p]) for p in g},
          "grown_alive": tot_alive, "grown_kept": tot_kept,
          "grown_survival": fraction(tot_kept, tot_alive)}


def cosine_ratio(step, initial: float, start: int, end: int) -> jax.Array:
  """Cosine-decayed ratio ``initial * (1 + cos(pi * t)) / 2`` (float scalar).

  ``t = clip((step - start) / (end - start), 0, 1)``: ``initial`` at
  ``start``, 0 from ``end`` on.
  """
  t = (jnp.asarray(step, jnp.float32) - start) / max(end - start, 1)
  t = jnp.clip(t, 0.0, 1.0)
  return jnp.asarray(initial, jnp.float32) * 0.5 * (1 + jnp.cos(jnp.pi * t))


# ---------------------------------------------------------------------------
# Static, dense.
# ---------------------------------------------------------------------------


class Static(SparsityAlgorithm):
  """A fixed random mask; events only report."""

  name = "static"


class Dense(SparsityAlgorithm):
  """No masks; events only report (PQ index of the dense kernels)."""

  name = "dense"

  def init_masks(self, params, key):
    del params, key
    return None

  def init(self, params, masks):
    del params, masks
    return {"iteration": jnp.zeros((), jnp.int32)}

  def validate(self, state):
    self._check_sparsity_state(state)


# ---------------------------------------------------------------------------
# GMP.
# ---------------------------------------------------------------------------


def gmp_density(step, *, target: float, start: int, end: int) -> jax.Array:
  """Zhu & Gupta's cubic schedule from density 1 at ``start`` to ``target``."""
  t = (jnp.asarray(step, jnp.float32) - start) / max(end - start, 1)
  t = jnp.clip(t, 0.0, 1.0)
  return target + (1.0 - target) * (1.0 - t)**3


class GMP(SparsityAlgorithm):
  """Gradual magnitude pruning from dense to ``target_density``."""

  name = "gmp"
  has_rewire_event = True

  def is_rewire_step(self, step):
    """Every ``rewire_every`` steps in ``(start, end]``, and at ``end``."""
    c = self.config
    if int(step) == c.rewire_end:
      return True
    return super().is_rewire_step(step)

  def _rewire(self, state, grads):
    del grads
    c = self.config
    masks = state.masks
    layout = self._layout(masks)
    w = layout.rows(state.params)
    m = layout.rows(masks)
    index = self._pq_rows(layout, w, m)
    target = gmp_density(state.step, target=c.target_density,
                         start=c.rewire_start, end=c.rewire_end)
    k, ratio = {}, {}
    for n in layout.names:
      size = m[n].shape[1]
      keep = jnp.round(target * size).astype(jnp.int32)
      d = jnp.sum(m[n], axis=1, dtype=jnp.int32)
      k[n] = jnp.maximum(d - keep, 0)
      ratio[n] = k[n].astype(jnp.float32) / jnp.maximum(d, 1)
    pruned = {n: rewire_lib.prune_rows(w[n], m[n], k[n]) for n in layout.names}
    new = {n: m[n] & ~pruned[n] for n in layout.names}
    grown = {n: jnp.zeros_like(m[n]) for n in layout.names}
    result = rewire_lib.make_result(layout, new, pruned, grown,
                                    regrow=False)
    state = rewire_lib.apply_rewiring(state, result)
    report = _report(masks, result.masks,
                     pq_index=self._layer_means(layout, index),
                     ratio=self._layer_means(layout, ratio),
                     num_pruned=result.num_pruned, num_grown=result.num_grown,
                     shortfall=result.shortfall)
    return state, report


# ---------------------------------------------------------------------------
# SAP.
# ---------------------------------------------------------------------------


class SAP(SparsityAlgorithm):
  """Diao et al.'s iterative PQ pruning with rewinding to the initial weights.

  State: ``{"init_params": params at init (masked), "iteration": int32}``.
  """

  name = "sap"
  has_boundary_event = True
  restarts_schedule = True

  def _init_state(self, params, masks):
    # A copy: no buffer may be shared with ``state.params`` (the trainer may
    # donate both).
    return {"init_params": jax.tree.map(
        jnp.copy, masks_lib.apply_masks(params, masks)),
            "iteration": jnp.zeros((), jnp.int32)}

  def _end_iteration(self, state, grads):
    del grads
    c = self.config
    masks = state.masks
    layout = self._layout(masks)
    w = layout.rows(state.params)
    m = layout.rows(masks)
    index = self._pq_rows(layout, w, m)
    rng, k_count = jax.random.split(state.rng)
    d = {n: jnp.sum(m[n], axis=1, dtype=jnp.int32) for n in layout.names}
    ratio = _pq_ratio_rows(c, layout, index, d)
    k = {n: pq_lib.rewire_count(ratio[n], d[n], rounding=c.rounding,
                                key=jax.random.fold_in(k_count, i))
         for i, n in enumerate(layout.names)}
    pruned = {n: rewire_lib.prune_rows(w[n], m[n], k[n]) for n in layout.names}
    new = {n: m[n] & ~pruned[n] for n in layout.names}
    grown = {n: jnp.zeros_like(m[n]) for n in layout.names}
    result = rewire_lib.make_result(layout, new, pruned, grown,
                                    regrow=False)
    # Copied, so that params and init_params never share a buffer.
    params = jax.tree.map(jnp.copy, masks_lib.apply_masks(
        state.sparsity_state["init_params"], result.masks))
    opt_state = (state.tx.init(params) if c.sap_reset_optimizer
                 else state.opt_state)
    state = state.replace(params=params, masks=result.masks,
                          opt_state=opt_state, rng=rng)
    state = self._next_iteration(state)
    report = _report(masks, result.masks,
                     pq_index=self._layer_means(layout, index),
                     ratio=self._layer_means(layout, ratio),
                     num_pruned=result.num_pruned, num_grown=result.num_grown,
                     shortfall=result.shortfall)
    return state, report


# ---------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------

_DST = ("pq_dst", "esl", "set", "set_mocanu", "rigl")
_IN_ITERATION = _DST + ("gmp",)

_REGISTRY: dict[str, Callable[[ml_collections.FrozenConfigDict],
                              SparsityAlgorithm]] = {
    "pq_dst": lambda c: DynamicSparse(c, "pq_dst"),
    "esl": lambda c: DynamicSparse(c, "esl"),
    "set": lambda c: DynamicSparse(c, "set"),
    "set_mocanu": lambda c: DynamicSparse(c, "set_mocanu"),
    "rigl": lambda c: DynamicSparse(c, "rigl"),
    "static": Static,
    "gmp": GMP,
    "sap": SAP,
    "dense": Dense,
}


def create(config, *, total_steps: int | None = None,
           steps_per_iteration: int | None = None) -> SparsityAlgorithm:
  """Builds the algorithm named by ``config.algorithm``.

  Args:
    config: the ``sparsity`` ConfigDict (or a dict); see
      :func:`default_sparsity_config`.
    total_steps: total optimizer steps of the run (see
      :func:`resolve_config`).
    steps_per_iteration: optimizer steps per iteration of the two-stage
      loop; no in-iteration event fires in the last ``rewire_every`` steps of
      an iteration (see the module docstring). ``None``: no iterations.

  Raises:
    ValueError: for an unknown algorithm or a bad field (naming it).
  """
  resolved = resolve_config(config, total_steps=total_steps,
                            steps_per_iteration=steps_per_iteration)
  algo = _REGISTRY[resolved.algorithm](resolved)
  algo.steps_per_iteration = steps_per_iteration
  return algo
