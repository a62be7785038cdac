"""Small sparse spiking models for the export tests (``test_export_*.py``):
initialised in NumPy from the shapes ``model.init`` would give (no
compilation), optionally trained a few steps on digits."""

import functools
import math

import jax
import numpy as np
import optax

from snn_sparse import models
from snn_sparse.data import pipeline
from snn_sparse.sparsity import masks as masks_lib
from snn_sparse.sparsity.state import SparseState
from snn_sparse.training import steps as steps_lib
from snn_sparse.training.train_state import TrainState

T = 4


@functools.lru_cache(maxsize=None)
def digits_test(examples: int = 360):
  """Real test digits: model input ``[T, N, 8, 8, 1]`` and labels ``[N]``."""
  batch = next(iter(pipeline.eval_batches("digits", split="test",
                                          batch_size=360)))
  x = np.asarray(steps_lib.encode(batch["input"][:examples], T))
  return x, batch["label"][:examples]


def init_variables(model, x, seed: int = 0, random_batchnorm: bool = False):
  """Variables of ``model`` for input ``x``: kernels ~ N(0, 1/fan_in), biases
  0, PLIF's ``w`` 0 (tau 2); BatchNorm scale 1, bias 0, statistics 0 and 1,
  or with ``random_batchnorm`` non-trivial ones (mean and bias ~ N(0, 0.5^2),
  var and scale ~ U(0.5, 2))."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda k: model.init(k, x, train=False),
                          jax.random.key(0))

  def init(path, s):
    name = masks_lib.path_str(path)
    if name.endswith("kernel"):
      fan_in = math.prod(s.shape[:-1])
      return rng.normal(0.0, fan_in**-0.5, s.shape).astype(s.dtype)
    if "BatchNorm" in name and random_batchnorm:
      if name.endswith(("mean", "bias")):
        return rng.normal(0.0, 0.5, s.shape).astype(s.dtype)
      return rng.uniform(0.5, 2.0, s.shape).astype(s.dtype)
    if name.endswith(("scale", "var")):
      return np.ones(s.shape, s.dtype)
    return np.zeros(s.shape, s.dtype)

  return jax.tree_util.tree_map_with_path(init, shapes)


def random_masks(params, density: float, seed: int = 0):
  """A Bernoulli(``density``) bool mask per kernel, ``None`` elsewhere."""
  rng = np.random.default_rng(seed + 1)
  return jax.tree_util.tree_map_with_path(
      lambda p, w: (rng.random(w.shape) < density
                    if masks_lib.is_prunable(masks_lib.path_str(p)) else None),
      params)


def trained(name: str, steps: int = 100, density: float = 0.4, seed: int = 0,
            **fields):
  """``(model, variables, masks)``: ``name`` with ``fields`` on digits, masks
  at ``density``, trained ``steps`` SGD steps (BatchNorm statistics move
  from their initial 0 and 1). ``variables["params"]`` are masked."""
  model = models.create(name, num_classes=10, **fields)
  x, _ = digits_test(2)
  variables = init_variables(model, x, seed)
  masks = random_masks(variables["params"], density, seed)
  state = TrainState.create(
      apply_fn=model.apply, params=variables["params"],
      batch_stats=variables.get("batch_stats", {}),
      tx=optax.sgd(0.05, momentum=0.9),
      sparsity=SparseState.from_masks(masks))
  train = steps_lib.make_steps(None, time_steps=T).train
  batches = pipeline.train_batches("digits", batch_size=64, seed=seed)
  for _ in range(steps):
    state, _ = train(state, next(batches))
  variables = {"params": state.effective_params(),
               "batch_stats": state.batch_stats}
  return model, jax.device_get(variables), jax.device_get(state.masks)
