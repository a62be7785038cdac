"""Sparsity: PQ index, masks, rewiring kernels and the algorithm registry."""
