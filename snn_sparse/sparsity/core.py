"""A sparsity algorithm: small parts over one prune-and-grow path.

An algorithm is a frozen (hashable) dataclass of parts:

* ``mask_init``: how the masks start (:class:`MaskInit`; ``None``: dense),
  over the kernels whose path matches ``pattern``.
* ``timing``: when the in-iteration event fires
  (:class:`~snn_sparse.sparsity.schedules.EventTiming`).
* ``rewire_amount`` / ``boundary_amount``: how many synapses the
  in-iteration event / the iteration-boundary event removes per unit
  (:mod:`~snn_sparse.sparsity.amounts`).
* ``growth``: how the in-iteration event regrows (:class:`Growth`; ``None``:
  it only prunes).
* what is dropped: always the active synapses of smallest ``|w|``; with
  ``protect_grown`` the boundary event spares the synapses grown during the
  iteration. ``pq_weights="mature"`` leaves them out of the PQ index.
* ``rewind`` / ``restart_optimizer``: after the boundary event, rewind the
  surviving weights to their initial values and restart the optimizer (SAP).
* ``config``: the resolved fields it was built from (a ``FrozenConfigDict``),
  for reading; the parts above are what runs.

Its events are pure functions, usable under ``jax.jit`` (the algorithm is
static; counts are traced, so nothing retraces when only values change)::

    state = algo.init(params, key)
    params, state, opt_state, report = algo.rewire(
        params, state, opt_state, step=step, key=key, grads=grads)
    params, state, opt_state, report = algo.end_iteration(
        params, state, opt_state, key=key, step=step)

``params`` are the model parameters with inactive weights at 0, ``opt_state``
the state of any optax optimizer (grown synapses' moments are reset in it),
``grads`` the dense gradients w.r.t. the effective weights, needed only when
``algo.needs_grads``. Events draw their random numbers from
``jax.random.split(key, 4)[1:]``; ``rewire_draws`` and
``end_iteration_draws`` say whether they draw at all, so that a caller with
one key stream (``split(key)[0]`` to continue it) advances it only then.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity import optimizer_state
from snn_sparse.sparsity import pq as pq_lib
from snn_sparse.sparsity import reports
from snn_sparse.sparsity import rewire as rewire_lib
from snn_sparse.sparsity.layout import UnitLayout
from snn_sparse.sparsity.schedules import EventTiming
from snn_sparse.sparsity.state import SparseState

PyTree = Any
Report = reports.Report


@dataclasses.dataclass(frozen=True)
class MaskInit:
  """Initial masks: ``masks.init_masks(params, method=, density=, ...)``."""

  method: str = "erk"
  density: float = 0.5
  dense_first: bool = False
  dense_last: bool = False

  def __call__(self, params: PyTree, key: jax.Array, *,
               pattern: str = masks_lib.PRUNABLE_PATTERN) -> PyTree:
    return masks_lib.init_masks(
        params, method=self.method, density=self.density, key=key,
        pattern=pattern, dense_first=self.dense_first,
        dense_last=self.dense_last)


@dataclasses.dataclass(frozen=True)
class Growth:
  """How pruned synapses are replaced (:func:`rewire.prune_and_grow_rows`).

  Attributes:
    score: ``"momentum"`` (the optimizer's momentum), ``"gradient"``
      (``|dense gradient|``, RigL), ``"random"`` (SET), or a callable
      ``score(params, masks, *, opt_state, grads, key) -> tree`` giving a
      float per synapse of every masked kernel (larger grows first).
    needs_grads: a callable ``score`` reads ``grads``.
    allow_regrow: may a synapse pruned by this event regrow in it (RigL).
    random_tiebreak: break score ties at random instead of by index.
    limit_to_candidates: prune only as many as can be regrown, so density
      stays exactly constant (``shortfall="limit"``).
    eps: Adam's epsilon in ``mu / (sqrt(nu) + eps)``.
  """

  score: Any = "momentum"
  needs_grads: bool = False
  allow_regrow: bool = False
  random_tiebreak: bool = True
  limit_to_candidates: bool = True
  eps: float = 1e-8


@dataclasses.dataclass(frozen=True)
class SparsityAlgorithm:
  """See the module docstring. Build one with ``sparsity.create``."""

  name: str
  mask_init: MaskInit | None = MaskInit()
  pattern: str = masks_lib.PRUNABLE_PATTERN
  scope: str = "layer"
  p: float = 0.5
  q: float = 1.0
  timing: EventTiming | None = None
  rewire_amount: Any = None
  growth: Growth | None = None
  boundary_amount: Any = None
  pq_weights: str = "active"
  protect_grown: bool = False
  rewind: bool = False
  restart_optimizer: bool = False
  restarts_schedule: bool = False
  config: Any = None

  # -- what the harness asks --------------------------------------------------

  @property
  def needs_grads(self) -> bool:
    """Whether ``rewire`` needs the dense gradients (growth by gradient)."""
    return self.growth is not None and (self.growth.score == "gradient"
                                        or self.growth.needs_grads)

  @property
  def has_rewire_event(self) -> bool:
    """Whether ``is_rewire_step`` can ever be True."""
    return self.timing is not None and self.rewire_amount is not None

  @property
  def has_boundary_event(self) -> bool:
    """Whether ``end_iteration`` changes masks or weights."""
    return self.boundary_amount is not None

  @property
  def rewire_draws(self) -> bool:
    """Whether ``rewire`` draws random numbers from its ``key``."""
    return self.has_rewire_event and self.growth is not None

  @property
  def end_iteration_draws(self) -> bool:
    """Whether ``end_iteration`` draws random numbers from its ``key``."""
    return self.has_boundary_event

  def is_rewire_step(self, step: int) -> bool:
    """Whether to call ``rewire`` once the optimizer has taken ``step``
    steps (host side)."""
    return self.has_rewire_event and self.timing.fires(step)

  def in_quiet_steps(self, step: int) -> bool:
    """Whether ``step`` is among the last ``every`` steps of its iteration,
    where no in-iteration event fires."""
    return self.timing is not None and self.timing.in_quiet_steps(step)

  # -- state ------------------------------------------------------------------

  def init_masks(self, params: PyTree, key: jax.Array) -> PyTree:
    """The initial mask tree (``None`` for a dense algorithm)."""
    if self.mask_init is None:
      return None
    return self.mask_init(params, key, pattern=self.pattern)

  def init(self, params: PyTree, key: jax.Array) -> SparseState:
    """The initial :class:`SparseState`; apply its masks to ``params``."""
    masks = self.init_masks(params, key)
    grown = (jax.tree.map(lambda m: None if m is None else jnp.zeros_like(m),
                          masks, is_leaf=masks_lib.is_none)
             if self.growth is not None else None)
    rewind = None
    if self.rewind:
      # A copy: no buffer may be shared with params (callers may donate).
      rewind = jax.tree.map(jnp.copy, masks_lib.apply_masks(params, masks))
    return SparseState(masks=masks, iteration=jnp.zeros((), jnp.int32),
                       grown=grown, rewind_params=rewind)

  def validate(self, params: PyTree, state: SparseState,
               opt_state: PyTree) -> None:
    """Host-side checks before training; raises ValueError naming the fault.

    The masks must have the structure of ``params`` (or be ``None`` for a
    dense algorithm), and growth by momentum needs an optimizer with momentum.
    """
    if self.mask_init is None:
      return
    if state.masks is None:
      raise ValueError(f"sparsity.algorithm={self.name!r} needs masks, but "
                       "state.masks is None; build the state with algo.init.")
    if jax.tree.structure(jax.tree.map(
        lambda m: 0, state.masks, is_leaf=masks_lib.is_none)) != (
            jax.tree.structure(jax.tree.map(lambda w: 0, params))):
      raise ValueError("state.masks does not have the structure of params.")
    if self.growth is not None and self.growth.score == "momentum":
      optimizer_state.optimizer_momentum(opt_state, params,
                                         eps=self.growth.eps)

  # -- events -----------------------------------------------------------------

  def rewire(self, params: PyTree, state: SparseState, opt_state: PyTree, *,
             step, key: jax.Array, grads: PyTree = None
             ) -> tuple[PyTree, SparseState, PyTree, Report]:
    """The in-iteration event: prune ``rewire_amount`` per unit, regrow.

    Without ``rewire_amount`` it only reports.
    """
    if not self.has_rewire_event:
      return params, state, opt_state, self.stats_report(params, state)
    if self.needs_grads and grads is None:
      raise ValueError(
          f"sparsity.grow='gradient' ({self.name}) needs the dense gradients:"
          " call rewire(..., grads=grads).")
    return self._event(params, state, opt_state, step=step, key=key,
                       grads=grads, amount=self.rewire_amount,
                       growth=self.growth, protect=False)

  def end_iteration(self, params: PyTree, state: SparseState,
                    opt_state: PyTree, *, key: jax.Array, step=0
                    ) -> tuple[PyTree, SparseState, PyTree, Report]:
    """The iteration-boundary event: prune ``boundary_amount`` per unit (the
    net prune; with ``rewind``, then rewind and restart). Without
    ``boundary_amount`` it only reports. ``step`` feeds amounts that depend
    on it (a cosine ratio)."""
    if not self.has_boundary_event:
      report = self.stats_report(params, state)
      return params, self._next_iteration(state), opt_state, report
    grown_before = state.grown
    masks_before = state.masks
    params, state, opt_state, report = self._event(
        params, state, opt_state, step=step, key=key, grads=None,
        amount=self.boundary_amount, growth=None, protect=self.protect_grown)
    if self.rewind:
      params = jax.tree.map(jnp.copy, masks_lib.apply_masks(
          state.rewind_params, state.masks))
      if self.restart_optimizer:
        opt_state = optimizer_state.restart(opt_state)
    if grown_before is not None:
      layout = UnitLayout(masks_before, self.scope)
      survival = reports.grown_survival(layout, grown_before, masks_before,
                                        state.masks)
      report["grown_survival"] = survival.pop("per_layer")
      report["total"].update(survival)
    return params, self._next_iteration(state), opt_state, report

  def stats_report(self, params: PyTree, state: SparseState) -> Report:
    """The report of an event that changes nothing."""
    return reports.stats_report(params, state.masks, scope=self.scope,
                                p=self.p, q=self.q, pattern=self.pattern)

  # -- the one prune-and-grow path --------------------------------------------

  def _next_iteration(self, state: SparseState) -> SparseState:
    """The next iteration: nothing grown in it yet."""
    grown = state.grown
    if grown is not None:
      grown = jax.tree.map(lambda m: None if m is None else jnp.zeros_like(m),
                           state.masks, is_leaf=masks_lib.is_none)
    return state.replace(iteration=state.iteration + 1, grown=grown)

  def _event(self, params, state, opt_state, *, step, key, grads, amount,
             growth, protect):
    """Prune ``amount`` per unit (regrow as many with ``growth``)."""
    _, k_count, k_score, k_tie = jax.random.split(key, 4)
    masks = state.masks
    layout = UnitLayout(masks, self.scope)
    w, m = layout.rows(params), layout.rows(masks)
    if state.grown is not None:
      g = layout.rows(state.grown)
      mature = {n: m[n] & ~g[n] for n in layout.names}
    else:
      mature = m
    pq_m = mature if self.pq_weights == "mature" else m
    eligible = mature if protect else m
    index = {n: pq_lib.pq_index_rows(w[n], pq_m[n], p=self.p, q=self.q)
             for n in layout.names}
    d = {n: jnp.sum(eligible[n], axis=1, dtype=jnp.int32)
         for n in layout.names}
    size = {n: m[n].shape[1] for n in layout.names}
    ratio, k = amount(step=step, index=index, d=d, size=size, key=k_count)
    if growth is None:
      pruned = {n: rewire_lib.prune_rows(w[n], eligible[n], k[n])
                for n in layout.names}
      new = {n: m[n] & ~pruned[n] for n in layout.names}
      grown = {n: jnp.zeros_like(m[n]) for n in layout.names}
      result = rewire_lib.make_result(layout, new, pruned, grown,
                                      regrow=False)
    else:
      if callable(growth.score):
        score_tree = growth.score(params, masks, opt_state=opt_state,
                                  grads=grads, key=k_score)
      else:
        score_tree = rewire_lib.growth_scores(
            growth.score, params, masks, opt_state=opt_state, grads=grads,
            key=k_score, eps=growth.eps)
      scores = layout.rows(score_tree)
      new, pruned, grown = {}, {}, {}
      for i, n in enumerate(layout.names):
        tiebreak = (jax.random.uniform(jax.random.fold_in(k_tie, i),
                                       m[n].shape)
                    if growth.random_tiebreak else None)
        new[n], pruned[n], grown[n] = rewire_lib.prune_and_grow_rows(
            w[n], m[n], k[n], scores[n], allow_regrow=growth.allow_regrow,
            tiebreak_rows=tiebreak,
            limit_to_candidates=growth.limit_to_candidates)
      result = rewire_lib.make_result(layout, new, pruned, grown,
                                      regrow=True)
    params, opt_state = rewire_lib.apply_result(params, opt_state, result)
    grown_since = state.grown
    if grown_since is not None:
      grown_since = jax.tree.map(
          lambda old, gr, mk: None if mk is None else (old | gr) & mk,
          state.grown, result.grown, result.masks, is_leaf=masks_lib.is_none)
    state = state.replace(masks=result.masks, grown=grown_since)
    report = reports.event_report(
        masks, result.masks,
        pq_index=layout.per_layer(index, "mean"),
        ratio=layout.per_layer(ratio, "mean"),
        num_pruned=result.num_pruned, num_grown=result.num_grown,
        shortfall=result.shortfall)
    return params, state, opt_state, report
