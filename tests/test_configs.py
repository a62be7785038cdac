"""Every config file loads, validates, and documents its command."""

import importlib
import pathlib

import pytest

from snn_sparse import models, train
from snn_sparse.data import pipeline
from snn_sparse.sparsity import algorithms

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
  algorithms.resolve_config(config.sparsity, total_steps=1000)
  assert config.model.name in models.MODELS
