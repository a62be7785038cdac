"""Equal final density: each arm's setting from the reference arm's runs.

The reference arm (``pq_dst`` at layer scope) ends at a density that emerges
from its PQ indices. The target ``d`` is the mean over its seeds of the
connectivity of its last iteration (``summary.json``). Each other arm is set
to end at ``d`` by its ``target``:

* ``init_density``: a constant-density method (``esl``, ``set``, ``rigl``,
  ``static``) starts at ``d`` (ERK, exact counts) and keeps it.
* ``target_density``: ``gmp`` prunes from dense to ``d``.
* ``constant_ratio`` / ``cosine_ratio``: a net-prune ablation (``pq_dst``
  with ``ratio="constant"`` or ``"cosine"``) gets the ratio whose net prunes,
  over the same iterations, end closest to ``d``.

The net-prune arithmetic is exact, so the ratio is solved, not guessed: the
initial masks have exact per-layer counts (``masks.layer_counts``);
in-iteration events rewire at constant per-unit counts
(``shortfall="limit"``); and the net prune after iteration ``i`` (every
iteration but the last) removes ``k = floor(c_i * d)`` per unit, computed
here by the algorithm's own ``boundary_amount`` at the step the trainer
passes (``i * steps_per_iteration``). The final density is monotone in the
ratio, so bisection over a grid of ``1e-6`` finds the closest one. The
result can differ from ``d`` by the rounding of the counts: at most one
synapse per unit and net prune, ``tolerance()``.
"""

from __future__ import annotations

import math
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from snn_sparse import sparsity
from snn_sparse.data import pipeline
from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.training import train

RATIO_TARGETS = ("constant_ratio", "cosine_ratio")
# Ratios are solved on this grid (and written with 6 decimals).
GRID = 10**6


def target_density(final_connectivity: Mapping[int, float]) -> float:
  """The target ``d``: the mean of the reference's final connectivities
  ``{seed: connectivity}``, rounded to 6 decimals."""
  if not final_connectivity:
    raise ValueError("no finished run of the reference arm to take the "
                     "target density from.")
  return round(float(np.mean(list(final_connectivity.values()))), 6)


def _schedule(config) -> tuple[int, int]:
  """``(steps_per_iteration, total_steps)`` as the trainer computes them."""
  steps_per_epoch = pipeline.steps_per_epoch(
      config.data.name, config.data.batch_size,
      validation_fraction=config.data.validation_fraction)
  spi = steps_per_epoch * config.epochs_per_iteration
  return spi, spi * config.num_iterations


def param_shapes(config):
  """The model's params as ``jax.ShapeDtypeStruct`` leaves (nothing is
  computed)."""
  info = pipeline.dataset_info(config.data.name)
  model = train.create_model(config, info.num_classes,
                             static_images=not info.frames)
  x = jax.ShapeDtypeStruct((config.time_steps, 1) + tuple(info.input_shape),
                           jnp.float32)
  key = jax.random.key(0)
  variables = jax.eval_shape(
      lambda x: model.init({"params": key, "dropout": key}, x, train=False), x)
  return variables["params"]


class NetPruneArithmetic:
  """The final connectivity of a net-prune arm as a function of its ratio.

  Args:
    config: the arm's full config (its ratio field is replaced in
      :meth:`final_connectivity`).
    field: ``"constant_ratio"`` or ``"cosine_ratio"``.
  """

  def __init__(self, config, field: str):
    if field not in RATIO_TARGETS:
      raise ValueError(f"field must be one of {list(RATIO_TARGETS)}, got "
                       f"{field!r}.")
    s = config.sparsity
    for name, ok, why in (
        ("scope", s.scope in ("layer", "global"),
         "the count per unit must not depend on the seed: layer or global"),
        ("rounding", s.rounding == "floor", "floor (stochastic counts are "
         "random)"),
        ("shortfall", s.shortfall == "limit", "limit (in-iteration events "
         "must keep the counts)"),
        ("protect_grown", not s.protect_grown, "False (the protected count "
         "depends on training)")):
      if not ok:
        raise ValueError(f"sparsity.{name}={s[name]!r}: a ratio can be solved "
                         f"for equal density only with {why}.")
    self.config, self.field = config, field
    self.steps_per_iteration, self.total_steps = _schedule(config)
    params = param_shapes(config)
    algo = self._algorithm(0.0)
    wanted = field.split("_")[0]  # constant | cosine
    if algo.config.ratio != wanted:
      raise ValueError(f"sparsity.ratio={algo.config.ratio!r}, but the arm's "
                       f"target is {field}: set sparsity.ratio={wanted!r}.")
    if algo.boundary_amount is None:
      raise ValueError(f"sparsity.algorithm={s.algorithm!r} with these fields "
                       "has no net prune (net_prune=False): no ratio sets its "
                       "final density.")
    init = algo.mask_init
    self.counts = masks_lib.layer_counts(
        params, method=init.method, density=init.density, pattern=s.pattern,
        dense_first=init.dense_first, dense_last=init.dense_last)
    sizes = {p: math.prod(w.shape) for p, w in
             ((masks_lib.path_str(k), w) for k, w in
              jax.tree_util.tree_flatten_with_path(params)[0])
             if masks_lib.is_prunable(p, s.pattern)}
    self.total = sum(sizes.values())
    # Prunable kernels kept dense (dense_first/last) count as fully active.
    self.dense_active = sum(v for p, v in sizes.items() if p not in self.counts)
    self.sizes = {p: sizes[p] for p in self.counts}
    self.scope = s.scope
    self.num_prunes = config.num_iterations - 1

  def _algorithm(self, value: float):
    fields = dict(self.config.sparsity.items())
    fields[self.field] = float(value)
    return sparsity.from_config(fields, total_steps=self.total_steps,
                                steps_per_iteration=self.steps_per_iteration)

  def units(self) -> int:
    """Units whose count is rounded at each net prune."""
    return 1 if self.scope == "global" else len(self.counts)

  def tolerance(self) -> float:
    """The most the rounding of counts can move the final connectivity:
    one synapse per unit and net prune, over all prunable synapses."""
    return self.units() * max(self.num_prunes, 1) / self.total

  def final_counts(self, value: float) -> dict[str, int]:
    """Active synapses per unit after every net prune at ratio ``value``."""
    amount = self._algorithm(value).boundary_amount
    if self.scope == "global":
      d = {"global": jnp.asarray([sum(self.counts.values())], jnp.int32)}
      size = {"global": sum(self.sizes.values())}
    else:
      d = {p: jnp.asarray([c], jnp.int32) for p, c in self.counts.items()}
      size = dict(self.sizes)
    index = {n: jnp.zeros((1,), jnp.float32) for n in d}
    key = jax.random.key(0)
    for i in range(1, self.num_prunes + 1):
      _, k = amount(step=i * self.steps_per_iteration, index=index, d=d,
                    size=size, key=key)
      d = {n: d[n] - k[n] for n in d}
    return {n: int(v[0]) for n, v in d.items()}

  def final_connectivity(self, value: float) -> float:
    """Connectivity of the last iteration at ratio ``value``: active over
    all prunable synapses (the trainer reports it in float32)."""
    active = sum(self.final_counts(value).values()) + self.dense_active
    return active / self.total

  def solve(self, target: float) -> tuple[float, float]:
    """``(ratio, final connectivity)``: the ratio on the grid whose final
    connectivity is closest to ``target`` (the smaller ratio on ties).

    Raises:
      ValueError: ``target`` lies outside what ratios 0..1 reach.
    """
    f = lambda i: self.final_connectivity(i / GRID)
    hi_density, lo_density = f(0), f(GRID)
    slack = self.tolerance()
    if not lo_density - slack <= target <= hi_density + slack:
      raise ValueError(
          f"sparsity.{self.field}: no ratio in [0, 1] ends at connectivity "
          f"{target:.6f} in {self.num_prunes} net prunes (ratio 0 ends at "
          f"{hi_density:.6f}, ratio 1 at {lo_density:.6f}).")
    lo, hi = 0, GRID  # f(lo) > target >= f(hi), or the ends.
    if f(hi) > target:
      return 1.0, lo_density
    if f(lo) <= target:
      return 0.0, hi_density
    while hi - lo > 1:
      mid = (lo + hi) // 2
      if f(mid) > target:
        lo = mid
      else:
        hi = mid
    best = min((lo, hi), key=lambda i: (abs(f(i) - target), i))
    return best / GRID, f(best)
