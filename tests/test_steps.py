"""The jitted train and eval steps on a real model."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snn_sparse import metrics, models
from snn_sparse.training import steps
from snn_sparse.sparsity.state import SparseState
from snn_sparse.training.train_state import TrainState


def _state(tx=None):
  model = models.create("convnet", num_classes=10)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 1, 8, 8, 1)),
                         train=False)
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           batch_stats=variables["batch_stats"],
                           tx=tx or optax.adam(3e-3))


def _batch(n, seed=0):
  rng = np.random.default_rng(seed)
  return {"input": rng.uniform(size=(n, 8, 8, 1)).astype(np.float32),
          "label": rng.integers(0, 10, n).astype(np.int32)}


def test_train_step_learns_a_fixed_batch_without_retracing():
  train_step = steps.make_steps(None, time_steps=4).train
  state, batch = _state(), _batch(16)
  first = None
  for _ in range(30):
    state, out = train_step(state, batch)
    first = float(out["loss"]) if first is None else first
  assert int(state.step) == 30
  assert float(out["loss"]) < 0.5 * first
  assert train_step._cache_size() == 1  # pylint: disable=protected-access


def test_encoding_of_images_and_event_frames():
  images = jnp.arange(2 * 8 * 8).reshape(2, 8, 8, 1)
  x = steps.encode(images, 4)
  assert x.shape == (4, 2, 8, 8, 1)
  np.testing.assert_array_equal(x[3, 1], images[1])
  frames = jnp.arange(2 * 3 * 4).reshape(2, 3, 4, 1, 1)  # [B=2, T=3, ...]
  x = steps.encode(frames, 3)
  assert x.shape == (3, 2, 4, 1, 1)
  np.testing.assert_array_equal(x[2, 1], frames[1, 2])
  with pytest.raises(ValueError, match="T=3, but config.time_steps is 4"):
    steps.encode(frames, 4)
  with pytest.raises(ValueError, match=r"batch\['input'\]"):
    steps.encode(jnp.zeros((8, 8)), 4)


def test_padded_eval_equals_eval_of_the_real_examples():
  eval_step = steps.make_steps(None, time_steps=4).evaluate
  state = _state()
  batch = _batch(5, seed=1)
  padded = {"input": np.concatenate([batch["input"], np.ones((3, 8, 8, 1),
                                                             np.float32)]),
            "label": np.concatenate([batch["label"], np.zeros(3, np.int32)]),
            "mask": np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float32)}
  a = metrics.finalize(metrics.accumulate(None, eval_step(state, batch)))
  b = metrics.finalize(metrics.accumulate(None, eval_step(state, padded)))
  assert a["examples"] == b["examples"] == 5
  for key in ("accuracy", "loss", "sops", "macs", "energy_uj"):
    assert a[key] == pytest.approx(b[key], rel=1e-5), key
  assert a["firing_rate"] == pytest.approx(b["firing_rate"], rel=1e-5)
  assert a["macs"] > 0 and a["sops"] > 0


def test_eval_ops_fall_with_the_masks():
  # All-ones 8x8 input, first conv 3x3 'same', 1 -> 32 channels. Dense: per
  # axis the outputs see 2+3*6+2 = 22 valid taps, so 22**2 * 32 MACs. With
  # only the centre tap active: 64 outputs x 1 tap x 32 channels.
  eval_step = steps.make_steps(None, time_steps=1).evaluate
  state = _state()
  batch = {"input": np.ones((1, 8, 8, 1), np.float32),
           "label": np.zeros(1, np.int32)}
  out = metrics.finalize(metrics.accumulate(None, eval_step(state, batch)))
  valid_taps = sum(len([d for d in (-1, 0, 1) if 0 <= i + d < 8])
                   for i in range(8)) ** 2  # 22**2 = 484 per (cin, cout)
  assert out["macs"] == pytest.approx(valid_taps * 1 * 32)
  kernel = state.params["Conv_0"]["kernel"]
  masks = jax.tree.map(lambda _: None, state.params)
  masks["Conv_0"]["kernel"] = jnp.zeros(kernel.shape, bool).at[1, 1].set(True)
  sparse = state.replace(sparsity=SparseState.from_masks(masks))
  out = metrics.finalize(metrics.accumulate(None, eval_step(sparse, batch)))
  assert out["macs"] == pytest.approx(64 * 32)  # only the centre tap
