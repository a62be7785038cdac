"""Learning-rate schedules and optimizer construction."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from snn_sparse.training import optimizers


def _cfg(**kw):
  c = ml_collections.ConfigDict(dict(
      name="sgd", learning_rate=0.1, momentum=0.9, nesterov=False,
      weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8, schedule="cosine",
      warmup_epochs=0.0, step_epochs=(2, 4), step_factor=0.1,
      restart_each_iteration=False))
  c.update(kw)
  return c


def test_cosine_with_warmup_by_hand():
  # 10 steps/epoch, 1 warm-up epoch, 100 steps: lr(5) = 0.05 (linear),
  # lr(10) = 0.1, lr(55) = 0.1 * 0.5 * (1 + cos(pi * 45/90)) = 0.05, lr(100) = 0.
  s = optimizers.create_schedule(_cfg(warmup_epochs=1.0), steps_per_epoch=10,
                                 total_steps=100)
  np.testing.assert_allclose([s(5), s(10), s(55), s(100)],
                             [0.05, 0.1, 0.05, 0.0], atol=1e-7)


def test_step_schedule_and_restart_each_iteration():
  s = optimizers.create_schedule(_cfg(schedule="step"), steps_per_epoch=10,
                                 total_steps=100)
  np.testing.assert_allclose([s(19), s(20), s(40)], [0.1, 0.01, 0.001],
                             rtol=1e-6)
  r = optimizers.create_schedule(_cfg(restart_each_iteration=True),
                                 steps_per_epoch=10, total_steps=100,
                                 steps_per_iteration=20)
  np.testing.assert_allclose([r(0), r(10), r(20), r(30)],
                             [0.1, 0.05, 0.1, 0.05], atol=1e-7)


@pytest.mark.parametrize("name", optimizers.OPTIMIZERS)
def test_every_optimizer_builds_and_steps(name):
  tx = optimizers.create_optimizer(_cfg(name=name, weight_decay=1e-4),
                                   steps_per_epoch=10, total_steps=100)
  params = {"w": jnp.ones(3)}
  updates, _ = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
  assert np.all(np.asarray(updates["w"]) < 0)


@pytest.mark.parametrize("field,value,match", [
    ("name", "lamb", r"optimizer.name: unknown 'lamb'"),
    ("schedule", "linear", r"optimizer.schedule: unknown 'linear'"),
    ("learning_rate", 0.0,
     r"optimizer.learning_rate: must be a finite number in \(0, inf\]"),
    ("warmup_epochs", 20.0, r"optimizer.warmup_epochs"),
])
def test_bad_fields_are_named(field, value, match):
  with pytest.raises(ValueError, match=match):
    optimizers.create_optimizer(_cfg(**{field: value}), steps_per_epoch=10,
                                total_steps=100)
