"""The reports of sparsity events: dicts of arrays, flattened for the log.

Every event returns::

    {"pq_index": {path: f32}, "ratio": {path: f32}, "pruned": {path: i32},
     "grown": {path: i32}, "active": {path: i32}, "density": {path: f32},
     "total": {"pruned", "grown", "grow_shortfall", "active", "size",
               "density"}}

``pq_index`` and ``ratio`` are the values the event used, averaged over the
units of a layer in ``neuron`` scope (the global value in ``global`` scope);
``active`` and ``density`` are after the event, over masked kernels. A net
prune also reports ``grown_survival`` (:func:`grown_survival`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity import pq as pq_lib
from snn_sparse.sparsity.layout import UnitLayout

PyTree = Any
Report = dict[str, Any]


def event_report(layout_masks, masks, *, pq_index, ratio, num_pruned,
                 num_grown, shortfall=None) -> Report:
  """The report of an event, from its per-layer values.

  Args:
    layout_masks: the masks before the event (they name the layers), or
      ``None`` when there are no masked kernels (an empty report).
    masks: the masks after the event (``active``, ``density``).
    pq_index, ratio: ``{path: f32}`` per layer (means over its units).
    num_pruned, num_grown: ``{path: i32}``.
    shortfall: i32 scalar, growth that found no candidates (default 0).
  """
  if layout_masks is None:
    empty = {}
    zero = jnp.zeros((), jnp.int32)
    return {"pq_index": empty, "ratio": {}, "pruned": {}, "grown": {},
            "active": {}, "density": {},
            "total": {"pruned": zero, "grown": zero, "grow_shortfall": zero,
                      "active": zero, "size": zero,
                      "density": jnp.ones((), jnp.float32)}}
  layer = UnitLayout(layout_masks, "layer")
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

def stats_report(params: PyTree, masks: PyTree, *, scope: str, p: float,
                 q: float, pattern: str) -> Report:
  """The report of an event that changes nothing: PQ index, zero counts.

  ``masks=None`` (dense) reports the kernels that ``pattern`` matches, all
  active.
  """
  if masks is None:
    full = masks_lib.full_masks(params, pattern=pattern)
    if not masks_lib.masked_paths(full):
      return event_report(None, None, pq_index={}, ratio={}, num_pruned={},
                          num_grown={})
    masks = full
  layout = UnitLayout(masks, scope)
  w, m = layout.rows(params), layout.rows(masks)
  index = {n: pq_lib.pq_index_rows(w[n], m[n], p=p, q=q)
           for n in layout.names}
  zero = jnp.zeros((), jnp.int32)
  return event_report(masks, masks,
                      pq_index=layout.per_layer(index, "mean"),
                      ratio={path: jnp.zeros((), jnp.float32)
                             for path in layout.paths},
                      num_pruned={path: zero for path in layout.paths},
                      num_grown={path: zero for path in layout.paths})


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
