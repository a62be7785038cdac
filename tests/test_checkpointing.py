"""Checkpoints round-trip the whole state, atomically, and fail clearly."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snn_sparse import models
from snn_sparse.training import checkpointing
from snn_sparse.sparsity.state import SparseState
from snn_sparse.training.train_state import TrainState


def _state(seed=0):
  model = models.create("mlp", features=(16,))
  params = model.init(jax.random.key(seed), jnp.zeros((1, 1, 4, 4, 1)),
                      train=False)["params"]
  masks = jax.tree.map(lambda _: None, params)
  masks["Dense_0"]["kernel"] = (
      jax.random.uniform(jax.random.key(seed + 1), (16, 16)) < 0.5)
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=optax.sgd(0.1, momentum=0.9),
                           sparsity=SparseState.from_masks(masks).replace(
                               extra={"count": jnp.int32(seed)}),
                           rng=jax.random.key(seed + 2))


def test_round_trip_restores_every_field(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path / "ckpt"), max_to_keep=2)
  assert ckpt.restore(_state()) is None
  state = _state(seed=7).replace(step=jnp.int32(12))
  ckpt.save(state, {"iterations_done": 3, "best": 0.5})
  template = _state(seed=0)
  restored, meta = ckpt.restore(template)
  assert meta == {"iterations_done": 3, "best": 0.5}
  assert int(restored.step) == 12
  for name in ("params", "masks", "opt_state", "sparsity"):
    jax.tree.map(np.testing.assert_array_equal, getattr(restored, name),
                 getattr(state, name))
  assert restored.masks["Dense_0"]["bias"] is None
  np.testing.assert_array_equal(jax.random.key_data(restored.rng),
                                jax.random.key_data(state.rng))
  assert restored.apply_fn is template.apply_fn  # static fields: template's


def test_keeps_only_the_newest(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path), max_to_keep=2)
  for step in (1, 2, 3):
    ckpt.save(_state().replace(step=jnp.int32(step)), {})
  assert ckpt.latest_step() == 3
  assert sorted(int(d) for d in os.listdir(tmp_path) if d.isdigit()) == [2, 3]


def test_corrupt_checkpoint_names_the_path(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path), max_to_keep=2)
  ckpt.save(_state().replace(step=jnp.int32(5)), {})
  shutil.rmtree(tmp_path / "5" / "state")
  with pytest.raises(RuntimeError, match=r"step 5 in .*Delete .*5"):
    checkpointing.Checkpointer(str(tmp_path)).restore(_state())
