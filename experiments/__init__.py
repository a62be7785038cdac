"""Experiment launchers and configs for snn_sparse."""
