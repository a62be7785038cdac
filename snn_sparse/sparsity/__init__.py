"""Sparse training as pure functions over pytrees, in the optax style.

Public API::

    from snn_sparse import sparsity

    algo = sparsity.create("pq_dst", init_density=0.5, rewire_every=50,
                           total_steps=1000)
    state = algo.init(params, key)        # SparseState: .masks, .grown, ...
    params = sparsity.apply_masks(params, state.masks)
    tx = sparsity.masked(optax.sgd(0.05, momentum=0.9))
    updates, opt_state = tx.update(grads, opt_state, params,
                                   masks=state.masks)
    if algo.is_rewire_step(step):
      params, state, opt_state, report = algo.rewire(
          params, state, opt_state, step=step, key=key, grads=grads)
    params, state, opt_state, report = algo.end_iteration(
        params, state, opt_state, key=key)
    sparsity.register("my_dst", factory)

Modules, one idea each:

* :mod:`core`: an algorithm as parts over one prune-and-grow path.
* :mod:`algorithms`: the built-in factories; :mod:`registry`: by name.
* :mod:`config`: the ``sparsity`` config section (fields, checks).
* :mod:`amounts`: how many per unit (PQ, constant, cosine, GMP, any
  schedule); :mod:`schedules`: when events fire.
* :mod:`state`: ``SparseState``; :mod:`masked`: the optax wrapper;
  :mod:`reports`: event reports.
* :mod:`masks`, :mod:`pq`, :mod:`layout`, :mod:`rewire`,
  :mod:`optimizer_state`: masks, the PQ index, unit rows, prune/grow
  kernels and the optimizer-state surgery they need.
"""

from snn_sparse.sparsity.algorithms import ALGORITHMS
from snn_sparse.sparsity.amounts import ConstantRatio
from snn_sparse.sparsity.amounts import CosineRatio
from snn_sparse.sparsity.amounts import GMPDensity
from snn_sparse.sparsity.amounts import PQRatio
from snn_sparse.sparsity.amounts import ScheduledRatio
from snn_sparse.sparsity.config import default_sparsity_config
from snn_sparse.sparsity.core import Growth
from snn_sparse.sparsity.core import MaskInit
from snn_sparse.sparsity.core import SparsityAlgorithm
from snn_sparse.sparsity.layout import UnitLayout
from snn_sparse.sparsity.masked import masked
from snn_sparse.sparsity.masks import apply_masks
from snn_sparse.sparsity.masks import fingerprint
from snn_sparse.sparsity.masks import full_masks
from snn_sparse.sparsity.masks import init_masks
from snn_sparse.sparsity.masks import mask_stats
from snn_sparse.sparsity.pq import pq_index
from snn_sparse.sparsity.pq import rewiring_ratio
from snn_sparse.sparsity.pq import tree_pq_index
from snn_sparse.sparsity.registry import create
from snn_sparse.sparsity.registry import from_config
from snn_sparse.sparsity.registry import names
from snn_sparse.sparsity.registry import register
from snn_sparse.sparsity.reports import flatten_report
from snn_sparse.sparsity.schedules import EventTiming
from snn_sparse.sparsity.state import SparseState

__all__ = [
    "ALGORITHMS", "ConstantRatio", "CosineRatio", "GMPDensity", "PQRatio",
    "ScheduledRatio", "default_sparsity_config", "Growth", "MaskInit",
    "SparsityAlgorithm", "UnitLayout", "masked", "apply_masks",
    "fingerprint", "full_masks", "init_masks", "mask_stats", "pq_index",
    "rewiring_ratio", "tree_pq_index", "create", "from_config", "names",
    "register", "flatten_report", "EventTiming", "SparseState",
]
