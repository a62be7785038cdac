"""Sparsity: PQ index, masks, rewiring kernels and the algorithm registry.

* :mod:`~snn_sparse.sparsity.masks`: mask trees, ER/ERK/uniform init,
  statistics.
* :mod:`~snn_sparse.sparsity.pq`: PQ index, retained bound, rewiring ratio
  and counts, per scope (``layer``, ``neuron``, ``global``).
* :mod:`~snn_sparse.sparsity.rewire`: exact, jit-stable prune/grow kernels,
  growth scores and optimizer-moment reset.
* :mod:`~snn_sparse.sparsity.algorithms`: ``pq_dst``, ``esl``, ``set``,
  ``rigl``, ``static``, ``gmp``, ``sap``, ``dense`` behind one interface,
  built from a ``sparsity`` ConfigDict by :func:`create`.
"""

from snn_sparse.sparsity.algorithms import ALGORITHMS
from snn_sparse.sparsity.algorithms import create
from snn_sparse.sparsity.algorithms import default_sparsity_config
from snn_sparse.sparsity.algorithms import flatten_report
from snn_sparse.sparsity.algorithms import resolve_config
from snn_sparse.sparsity.algorithms import SparsityAlgorithm
from snn_sparse.sparsity.masks import apply_masks
from snn_sparse.sparsity.masks import full_masks
from snn_sparse.sparsity.masks import init_masks
from snn_sparse.sparsity.masks import is_none
from snn_sparse.sparsity.masks import is_prunable
from snn_sparse.sparsity.masks import layer_counts
from snn_sparse.sparsity.masks import layer_densities
from snn_sparse.sparsity.masks import mask_stats
from snn_sparse.sparsity.masks import masked_paths
from snn_sparse.sparsity.masks import path_str
from snn_sparse.sparsity.masks import PRUNABLE_PATTERN
from snn_sparse.sparsity.masks import prunable_paths
from snn_sparse.sparsity.pq import pq_index
from snn_sparse.sparsity.pq import ratio_from_index
from snn_sparse.sparsity.pq import retained_bound
from snn_sparse.sparsity.pq import rewire_count
from snn_sparse.sparsity.pq import rewiring_ratio
from snn_sparse.sparsity.pq import tree_pq_index
from snn_sparse.sparsity.pq import tree_retained_bound
from snn_sparse.sparsity.pq import tree_rewire_count
from snn_sparse.sparsity.pq import tree_rewiring_ratio
from snn_sparse.sparsity.pq import UnitLayout
from snn_sparse.sparsity.rewire import growth_scores
from snn_sparse.sparsity.rewire import net_prune_state
from snn_sparse.sparsity.rewire import optimizer_momentum
from snn_sparse.sparsity.rewire import prune
from snn_sparse.sparsity.rewire import prune_and_grow
from snn_sparse.sparsity.rewire import reset_moments
from snn_sparse.sparsity.rewire import rewire_state
from snn_sparse.sparsity.rewire import RewireResult

__all__ = [
    "ALGORITHMS",
    "create",
    "default_sparsity_config",
    "flatten_report",
    "resolve_config",
    "SparsityAlgorithm",
    "apply_masks",
    "full_masks",
    "init_masks",
    "is_none",
    "is_prunable",
    "layer_counts",
    "layer_densities",
    "mask_stats",
    "masked_paths",
    "path_str",
    "PRUNABLE_PATTERN",
    "prunable_paths",
    "pq_index",
    "ratio_from_index",
    "retained_bound",
    "rewire_count",
    "rewiring_ratio",
    "tree_pq_index",
    "tree_retained_bound",
    "tree_rewire_count",
    "tree_rewiring_ratio",
    "UnitLayout",
    "growth_scores",
    "net_prune_state",
    "optimizer_momentum",
    "prune",
    "prune_and_grow",
    "reset_moments",
    "rewire_state",
    "RewireResult",
]
