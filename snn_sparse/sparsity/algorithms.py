"""The built-in algorithms: short factories over the parts of :mod:`core`.

=========  ==================================================================
pq_dst     Shen et al. (ICLR 2025). Init ``erk`` at ``init_density``.
           Every ``rewire_every`` steps (not in an iteration's last
           ``rewire_every`` steps): per unit (``scope``), ``k =
           floor(c*d)`` (``rounding``) with ``c`` from ``ratio`` (``pq``);
           prune the ``k`` smallest ``|w|``, grow ``k`` by ``grow``
           (``momentum``), no regrowth in the same step. At each iteration
           boundary, if ``net_prune`` (True): remove ``floor(c*d)`` more, no
           growth. Knobs: ``pq_weights``, ``protect_grown``, ``rounding``,
           ``bound_rounding``, ``p, q, alpha_r, gamma, beta``.
esl        ESL-SNN: as pq_dst with ``ratio="constant"`` (``constant_ratio``
           0.15), ``net_prune=False``: constant density. Growth
           ``momentum`` (our choice; set ``grow`` to change it).
set        SET as RigL's paper and code run it: ``ratio="cosine"``
           (``cosine_ratio`` decayed to 0 at ``rewire_end``),
           ``grow="random"``, grown weights start at 0, ``net_prune=False``.
set_mocanu SET with Mocanu et al.'s (2018) original schedule: a constant
           drop fraction (``ratio="constant"``, ``constant_ratio`` 0.3) at
           every event; otherwise as ``set``.
rigl       RigL: ``ratio="cosine"``, ``grow="gradient"``,
           ``allow_regrow=True``, ``net_prune=False``; needs grads (the
           dense gradients of the train step that precedes the event). A
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
           at ``init`` and, if ``sap_reset_optimizer``, restart the
           optimizer. Its learning-rate schedule restarts each iteration
           (``restarts_schedule``; the trainer's
           ``optimizer.restart_each_iteration`` default). Init ``dense``.
dense      No masks; events only report.
=========  ==================================================================

Each factory takes the fields of :func:`config.default_sparsity_config` as
keyword arguments (``None`` or missing: the algorithm's default above), plus
``total_steps`` (to derive ``rewire_end`` where an end is needed) and
``steps_per_iteration`` (the two-stage loop's iteration length: no
in-iteration event fires in its last ``rewire_every`` steps, see
:mod:`schedules`).

``pq_dst`` knobs (defaults: the paper's literal reading):

* ``pq_weights="active"`` computes the PQ index over all active synapses;
  ``"mature"`` excludes synapses grown since the last iteration boundary.
* ``protect_grown=True`` exempts synapses grown in the current iteration
  from its net prune; the count is then ``floor(c * d_eligible)`` over the
  unprotected active synapses.
* ``rounding="floor"`` or ``"stochastic"`` (see :func:`pq.rewire_count`).
* ``bound_rounding="exact"`` uses the real-valued retained bound ``r``;
  ``"ceil"`` rounds it up to ``ceil(r)`` first, as Diao et al.'s code does.
* ``shortfall="limit"`` (default): a unit with fewer inactive synapses than
  it prunes (a layer ERK capped at density 1) prunes only as many as it can
  regrow, so in-iteration events keep density exactly constant;
  ``"shrink"`` prunes ``k`` anyway and reports ``total/grow_shortfall``.

The ``iteration_end`` report of a net prune also holds ``grown_survival``
(per layer, and in ``total``): of the synapses grown during the iteration
and still active at its end, the fraction that survives the net prune.
"""

from __future__ import annotations

from snn_sparse.sparsity import amounts
from snn_sparse.sparsity import config as config_lib
from snn_sparse.sparsity.core import Growth, MaskInit, SparsityAlgorithm
from snn_sparse.sparsity.schedules import EventTiming

ALGORITHMS = ("pq_dst", "esl", "set", "set_mocanu", "rigl", "static", "gmp",
              "sap", "dense")

PRESETS = {
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


def _resolve(name, fields, kind, total_steps, steps_per_iteration):
  return config_lib.resolve(name, fields, preset=PRESETS[name], kind=kind,
                            total_steps=total_steps,
                            steps_per_iteration=steps_per_iteration)


def _base(name, cfg) -> dict:
  """The parts every algorithm shares, from resolved fields ``cfg``."""
  return dict(name=name, config=cfg, pattern=cfg.pattern, scope=cfg.scope,
              p=cfg.p, q=cfg.q, mask_init=MaskInit(
                  method=cfg.init, density=cfg.init_density,
                  dense_first=cfg.dense_first, dense_last=cfg.dense_last))


def pq_ratio(cfg) -> amounts.PQRatio:
  """The PQ method's amount from resolved fields ``cfg``."""
  return amounts.PQRatio(p=cfg.p, q=cfg.q, alpha_r=cfg.alpha_r, gamma=cfg.gamma,
                         beta=cfg.beta, bound_rounding=cfg.bound_rounding,
                         rounding=cfg.rounding)


def _ratio(cfg):
  if cfg.ratio == "pq":
    return pq_ratio(cfg)
  if cfg.ratio == "constant":
    return amounts.ConstantRatio(cfg.constant_ratio, rounding=cfg.rounding)
  return amounts.CosineRatio(cfg.cosine_ratio, cfg.rewire_start, cfg.rewire_end,
                             rounding=cfg.rounding)


def _timing(cfg, steps_per_iteration, fire_at_end=False) -> EventTiming:
  return EventTiming(every=cfg.rewire_every, start=cfg.rewire_start,
                     end=cfg.rewire_end,
                     steps_per_iteration=steps_per_iteration,
                     fire_at_end=fire_at_end)


def _dynamic_sparse(name):
  """A prune-and-grow algorithm at constant density (+ optional net prune)."""

  def factory(*, total_steps=None, steps_per_iteration=None, **fields):
    cfg = _resolve(name, fields, "dst", total_steps, steps_per_iteration)
    ratio = _ratio(cfg)
    return SparsityAlgorithm(
        **_base(name, cfg), timing=_timing(cfg, steps_per_iteration),
        rewire_amount=ratio,
        growth=Growth(score=cfg.grow, allow_regrow=cfg.allow_regrow,
                      random_tiebreak=cfg.random_tiebreak,
                      limit_to_candidates=cfg.shortfall == "limit",
                      eps=cfg.adam_eps),
        boundary_amount=ratio if cfg.net_prune else None,
        pq_weights=cfg.pq_weights, protect_grown=cfg.protect_grown)

  factory.__name__ = name
  factory.__doc__ = f"The ``{name}`` algorithm (see the module docstring)."
  return factory


pq_dst = _dynamic_sparse("pq_dst")
esl = _dynamic_sparse("esl")
set_ = _dynamic_sparse("set")
set_mocanu = _dynamic_sparse("set_mocanu")
rigl = _dynamic_sparse("rigl")


def static(*, total_steps=None, steps_per_iteration=None, **fields):
  """A fixed mask; events only report."""
  cfg = _resolve("static", fields, "other", total_steps, steps_per_iteration)
  return SparsityAlgorithm(**_base("static", cfg))


def dense(*, total_steps=None, steps_per_iteration=None, **fields):
  """No masks; events only report (the PQ index of the dense kernels)."""
  cfg = _resolve("dense", fields, "other", total_steps, steps_per_iteration)
  return SparsityAlgorithm(**{**_base("dense", cfg), "mask_init": None})


def gmp(*, total_steps=None, steps_per_iteration=None, **fields):
  """Gradual magnitude pruning from dense to ``target_density``."""
  cfg = _resolve("gmp", fields, "gmp", total_steps, steps_per_iteration)
  return SparsityAlgorithm(
      **_base("gmp", cfg),
      timing=_timing(cfg, steps_per_iteration, fire_at_end=True),
      rewire_amount=amounts.GMPDensity(cfg.target_density, cfg.rewire_start,
                                       cfg.rewire_end))


def sap(*, total_steps=None, steps_per_iteration=None, **fields):
  """Iterative PQ pruning with rewinding to the initial weights."""
  cfg = _resolve("sap", fields, "other", total_steps, steps_per_iteration)
  return SparsityAlgorithm(
      **_base("sap", cfg), boundary_amount=pq_ratio(cfg), rewind=True,
      restart_optimizer=cfg.sap_reset_optimizer, restarts_schedule=True)


FACTORIES = {"pq_dst": pq_dst, "esl": esl, "set": set_,
             "set_mocanu": set_mocanu, "rigl": rigl, "static": static,
             "gmp": gmp, "sap": sap, "dense": dense}
