"""The ``sparsity`` config section: its fields, their defaults and checks.

The config is an adapter at the edge: :func:`default_sparsity_config` lists
every field an algorithm of the registry reads, :func:`resolve` validates
given fields (naming any bad one) and fills in an algorithm's own defaults,
and ``sparsity.from_config`` builds the algorithm from a config section. The
core itself takes keyword arguments (``sparsity.create(name, **fields)``).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import ml_collections
import numpy as np

from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity import pq as pq_lib
from snn_sparse.sparsity import rewire as rewire_lib
from snn_sparse.sparsity.layout import SCOPES
from snn_sparse.sparsity.schedules import steps_left

RATIO_MODES = ("pq", "constant", "cosine")
PQ_WEIGHTS = ("active", "mature")
SHORTFALL_MODES = ("limit", "shrink")
BOUND_ROUNDINGS = ("exact", "ceil")


# A ``None`` default that the command line can still override with a value.
_optional = ml_collections.config_dict.placeholder


def default_sparsity_config() -> ml_collections.ConfigDict:
  """The ``sparsity`` config with every field and its default.

  ``None`` means "the algorithm's own default" (see :mod:`algorithms`);
  for ``pq_dst`` these resolve to the method's defaults: ``init="erk"``,
  ``ratio="pq"``, ``grow="momentum"``, ``allow_regrow=False``,
  ``net_prune=True``. :attr:`SparsityAlgorithm.config` holds the resolved
  values.
  """
  section = ml_collections.ConfigDict()
  section.algorithm = "pq_dst"          # a registered name (sparsity.names())
  section.scope = "layer"               # layer | neuron | global
  # Initial masks.
  section.init = _optional(str)         # er | erk | uniform | dense
  section.init_density = 0.5            # target density over masked kernels
  section.dense_first = False  # keep the first prunable kernel unmasked
  section.dense_last = False            # keep the last prunable kernel unmasked
  section.pattern = masks_lib.PRUNABLE_PATTERN
  # PQ index and ratio (Diao et al.'s defaults).
  section.p = 0.5
  section.q = 1.0
  section.alpha_r = 0.001
  section.gamma = 1.0
  section.beta = 0.9
  section.ratio = _optional(str)        # pq | constant | cosine
  # ratio="constant": esl 0.15 (about PQ's c for Gaussians), set_mocanu 0.3
  section.constant_ratio = _optional(float)
  section.cosine_ratio = 0.3            # ratio="cosine": c at rewire_start
  section.rounding = "floor"            # floor | stochastic
  section.bound_rounding = "exact"      # exact | ceil (Diao et al.'s ceil(r))
  # Growth.
  section.grow = _optional(str)         # momentum | gradient | random
  section.allow_regrow = _optional(bool)  # may a pruned synapse regrow at once?
  section.adam_eps = 1e-8               # eps in mu / (sqrt(nu) + eps)
  section.random_tiebreak = True  # random (not index) order for growth ties
  section.shortfall = "limit"           # limit | shrink: a unit with too few
                                  # inactive synapses to regrow k (see top)
  # When events happen (in optimizer steps).
  section.rewire_every = 100            # in-iteration event period; 0 = never.
                                  # No event in the last rewire_every steps
                                  # of an iteration (see top).
  section.rewire_start = 0              # no events at steps <= rewire_start
  section.rewire_end = 0                # no events after it; 0 = none, or (when
                                  # an end is needed) fraction * total_steps
  section.rewire_end_fraction = 0.75    # end = fraction * total_steps if needed
  # pq_dst knobs.
  section.net_prune = _optional(bool)   # net prune at iteration boundaries
  section.pq_weights = "active"         # active | mature
  section.protect_grown = False
  # gmp / sap.
  section.target_density = 0.1          # gmp's final density
  section.sap_reset_optimizer = True  # sap: re-init the optimizer after rewind
  return section


# Fields whose default is shared by every algorithm that does not set it.
_COMMON_DEFAULTS = dict(constant_ratio=0.15)

_CHOICES = {
    "scope": SCOPES,
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
  if isinstance(v, bool) or not isinstance(v, (int, float)) or (
      not math.isfinite(v)):
    _fail(field, f"must be a finite number, got {v!r}.")
  bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
  bad_hi = hi is not None and (v >= hi if hi_open else v > hi)
  if bad_lo or bad_hi:
    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    _fail(field, f"must be in {lb}{lo if lo is not None else '-inf'}, "
          f"{hi if hi is not None else 'inf'}{rb}, got {v!r}.")


def resolve(algorithm: str, given: Mapping[str, Any], *,
            preset: Mapping[str, Any], kind: str = "other",
            total_steps: int | None = None,
            steps_per_iteration: int | None = None
            ) -> ml_collections.FrozenConfigDict:
  """Validates the fields of an algorithm and fills in its defaults.

  Args:
    algorithm: the registered name.
    given: (a subset of) the fields of :func:`default_sparsity_config`, as
      keyword arguments or a config section; missing fields take the
      ``preset`` value, else the default.
    preset: the algorithm's own defaults for fields left ``None``.
    kind: ``"dst"`` (an in-iteration prune-and-grow event), ``"gmp"`` (an
      in-iteration pruning schedule that needs an end) or ``"other"``.
    total_steps: total optimizer steps of the run; used to derive
      ``rewire_end = round(rewire_end_fraction * total_steps)`` when an
      algorithm needs an end (cosine ratio, ``gmp``) and ``rewire_end`` is 0.
    steps_per_iteration: optimizer steps per iteration of the two-stage
      loop, if there is one; used to check that in-iteration events can fire
      (``rewire_every`` < ``steps_per_iteration``) and to move ``gmp``'s
      derived final event out of an iteration's quiet steps (see
      :mod:`snn_sparse.sparsity.schedules`).

  Raises:
    ValueError: naming the field, for an unknown field, an unknown choice
      (listing the valid ones) or an out-of-range value.
  """
  defaults = default_sparsity_config()
  given = {k: v for k, v in dict(given).items() if k != "algorithm"}
  unknown = sorted(set(given) - set(defaults.keys()))
  if unknown:
    raise ValueError(
        f"sparsity: unknown field(s) {unknown}; valid fields are "
        f"{sorted(defaults.keys())}.")
  cfg = dict(defaults.items())
  cfg.update(given)
  cfg["algorithm"] = algo = algorithm
  for field, value in {**_COMMON_DEFAULTS, **preset}.items():
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
  try:
    re.compile(cfg["pattern"])
  except re.error as e:
    _fail("pattern", f"{cfg['pattern']!r} is not a valid regex ({e}); it "
          "matches the '/'-joined parameter paths of the prunable kernels, "
          "for example 'kernel$'.")
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

  needs_end = kind == "gmp" or (kind == "dst" and cfg["ratio"] == "cosine")
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
  if kind == "gmp" and cfg["rewire_every"] == 0:
    _fail("rewire_every", "gmp prunes every rewire_every steps; must be > 0.")
  every = cfg["rewire_every"]
  if steps_per_iteration and every and kind in ("dst", "gmp"):
    if every >= steps_per_iteration:
      _fail("rewire_every",
            f"{every} >= the {steps_per_iteration} steps of an iteration: no "
            "in-iteration event could fire, since none fires in the last "
            "rewire_every steps of an iteration. Set it below "
            f"{steps_per_iteration}, or to 0 for no in-iteration events.")
    if kind == "gmp":
      quiet = every - steps_left(cfg["rewire_end"], steps_per_iteration)
      if quiet > 0:
        if "rewire_end" in given and given["rewire_end"]:
          _fail("rewire_end",
                f"{cfg['rewire_end']} lies in the last rewire_every = {every} "
                "steps of an iteration, where no event fires; set it to "
                f"{cfg['rewire_end'] - quiet} or earlier.")
        cfg["rewire_end"] -= quiet
  return ml_collections.FrozenConfigDict(cfg)
