"""Every config file loads, validates, and documents its command."""

import importlib
import pathlib

import pytest

from snn_sparse import models
from snn_sparse.training import train
from snn_sparse.data import pipeline
from snn_sparse import sparsity

CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).resolve().parents[1]
                                  / "experiments" / "configs").glob("*.py")
                 if p.stem != "__init__")


@pytest.mark.parametrize("name", CONFIGS)
def test_config_is_valid_and_documented(name):
  module = importlib.import_module(f"experiments.configs.{name}")
  doc = module.__doc__
  assert f"--config experiments/configs/{name}.py" in doc
  assert "Expected run time" in doc and "Expected result" in doc
  config = module.get_config()
  train.validate_config(config)
  info = pipeline.dataset_info(config.data.name)
  train.create_model(config, info.num_classes)
  assert config.model.name in models.MODELS
  # Rewiring once per epoch of the examples actually trained on, and the
  # docstring says how many examples choose the best iteration.
  fraction = config.data.validation_fraction
  steps = pipeline.steps_per_epoch(config.data.name, config.data.batch_size,
                                   validation_fraction=fraction)
  assert config.sparsity.rewire_every == steps
  assert config.checkpoint_every_steps % steps == 0
  sparsity.from_config(
      config.sparsity, total_steps=steps * config.epochs_per_iteration *
      config.num_iterations,
      steps_per_iteration=steps * config.epochs_per_iteration)
  validation = pipeline.split_sizes(config.data.name, fraction)["validation"]
  assert f"{validation:,} of the" in " ".join(doc.split())
