"""Checkpoints round-trip the whole state, atomically, and fail clearly."""

import json
import os

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


def _two_checkpoints(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path / "ckpt"), max_to_keep=2)
  for step in (5, 10):
    ckpt.save(_state(seed=step).replace(step=jnp.int32(step)), {"at": step})
  ckpt.close()
  return tmp_path / "ckpt"


def _largest_array_file(step_dir):
  files = [os.path.join(r, n) for r, _, ns in os.walk(step_dir / "state")
           for n in ns if os.sep + "d" + os.sep in os.path.join(r, n)]
  return max(files, key=os.path.getsize)


def _flip_middle_bytes(path):
  data = bytearray(open(path, "rb").read())
  middle = len(data) // 2
  data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
  open(path, "wb").write(bytes(data))


def _truncate(path):
  data = open(path, "rb").read()
  open(path, "wb").write(data[:len(data) // 2])


def _garble(path):
  open(path, "w").write("{garbled")


DAMAGE = {
    "garbled array": lambda d: _flip_middle_bytes(_largest_array_file(d)),
    "truncated array": lambda d: _truncate(_largest_array_file(d)),
    "missing metadata": lambda d: os.remove(d / "state" / "_METADATA"),
    "garbled metadata": lambda d: _garble(d / "state" / "_METADATA"),
    "garbled meta": lambda d: _garble(next(
        p for p in (d / "meta").iterdir() if p.is_file())),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_checkpoint_is_set_aside(tmp_path, kind, caplog):
  directory = _two_checkpoints(tmp_path)
  DAMAGE[kind](directory / "10")
  state, meta = checkpointing.Checkpointer(str(directory)).restore(_state())
  # The damage is detected, the previous checkpoint restored ...
  assert int(state.step) == 5 and meta == {"at": 5}
  jax.tree.map(np.testing.assert_array_equal, state.params,
               _state(seed=5).params)
  # ... and the damaged one moved aside, not deleted, with a warning.
  assert sorted(os.listdir(directory)) == ["5"]
  [aside] = os.listdir(str(directory) + ".corrupt")
  assert aside.startswith("10-")
  assert "damaged" in caplog.text and str(directory / "10") in caplog.text


def test_no_verified_checkpoint_left_is_refused(tmp_path):
  directory = _two_checkpoints(tmp_path)
  for step in ("5", "10"):
    _flip_middle_bytes(_largest_array_file(directory / step))
  with pytest.raises(RuntimeError, match=r"No readable checkpoint is left "
                     r".*step\(s\) 10, 5 were damaged"):
    checkpointing.Checkpointer(str(directory)).restore(_state())
  assert sorted(d.split("-")[0] for d in os.listdir(
      str(directory) + ".corrupt")) == ["10", "5"]


def test_an_intact_checkpoint_of_another_model_is_refused_not_moved(
    tmp_path):
  directory = _two_checkpoints(tmp_path)
  other = _state().replace(params={"Dense_9": {"kernel": jnp.zeros(3)}})
  with pytest.raises(RuntimeError, match="intact but does not fit this run"):
    checkpointing.Checkpointer(str(directory)).restore(other)
  assert sorted(os.listdir(directory)) == ["10", "5"]


def test_max_to_keep_zero_is_refused(tmp_path):
  with pytest.raises(ValueError, match=r"config.max_to_keep: 0"):
    checkpointing.Checkpointer(str(tmp_path), max_to_keep=0)


def test_an_interrupted_save_is_cleaned_up_on_the_next_start(tmp_path):
  directory = _two_checkpoints(tmp_path)
  leftover = directory / "15.orbax-checkpoint-tmp-1234"
  (leftover / "state").mkdir(parents=True)
  ckpt = checkpointing.Checkpointer(str(directory))
  assert not leftover.exists()
  assert ckpt.latest_step() == 10


def test_checksums_are_recorded_for_every_file(tmp_path):
  directory = _two_checkpoints(tmp_path)
  sums = json.load(open(directory / "10" / checkpointing.CHECKSUMS))
  files = {os.path.relpath(os.path.join(r, n), directory / "10")
           for r, _, ns in os.walk(directory / "10") for n in ns}
  assert set(sums) == files - {checkpointing.CHECKSUMS}
  assert checkpointing.verify_checksums(str(directory / "10")) is None


