"""Optimizers and learning-rate schedules from an ml_collections config.

``config.optimizer`` fields:

- ``name``: ``"sgd"`` (momentum), ``"adam"`` or ``"adamw"``.
- ``learning_rate``, ``momentum`` (SGD; also the trace momentum growth
  ranks), ``nesterov``, ``weight_decay`` (L2 added to the gradient for SGD
  and Adam, decoupled for AdamW), ``b1``, ``b2``, ``eps`` (Adam/AdamW).
- ``schedule``: ``"cosine"`` (to 0 after warm-up), ``"step"`` (multiply by
  ``step_factor`` at each epoch in ``step_epochs``) or ``"constant"``;
  ``warmup_epochs`` of linear warm-up from 0.
- ``restart_each_iteration``: restart the schedule at each iteration of the
  two-stage loop (``False``: one schedule over the whole run).
"""

from __future__ import annotations

import optax

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "constant")


def _fail(field: str, message: str):
  raise ValueError(f"config.optimizer.{field}: {message}")


def create_schedule(cfg, *, steps_per_epoch: int, total_steps: int,
                    steps_per_iteration: int | None = None) -> optax.Schedule:
  """The learning-rate schedule ``step -> lr`` described by ``cfg``."""
  period = steps_per_iteration if cfg.restart_each_iteration else total_steps
  if cfg.learning_rate <= 0:
    _fail("learning_rate", f"must be > 0, got {cfg.learning_rate}.")
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  if not 0 <= warmup < period:
    _fail("warmup_epochs", f"{cfg.warmup_epochs} epochs = {warmup} steps; "
          f"must be >= 0 and shorter than the schedule ({period} steps).")
  lr = cfg.learning_rate
  if cfg.schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, period - warmup)
  elif cfg.schedule == "step":
    main = optax.piecewise_constant_schedule(lr, {
        int(e * steps_per_epoch) - warmup: cfg.step_factor
        for e in cfg.step_epochs})
  elif cfg.schedule == "constant":
    main = optax.constant_schedule(lr)
  else:
    _fail("schedule", f"unknown {cfg.schedule!r}; choose one of {SCHEDULES}.")
  schedule = (optax.join_schedules([optax.linear_schedule(0.0, lr, warmup),
                                    main], [warmup]) if warmup else main)
  if cfg.restart_each_iteration:
    return lambda step: schedule(step % period)
  return schedule


def create_optimizer(cfg, *, steps_per_epoch: int, total_steps: int,
                     steps_per_iteration: int | None = None
                     ) -> optax.GradientTransformation:
  """The optax transformation described by ``cfg`` (``config.optimizer``)."""
  schedule = create_schedule(cfg, steps_per_epoch=steps_per_epoch,
                             total_steps=total_steps,
                             steps_per_iteration=steps_per_iteration)
  wd = cfg.weight_decay
  if cfg.name == "sgd":
    opt = optax.sgd(schedule, momentum=cfg.momentum or None,
                    nesterov=cfg.nesterov)
  elif cfg.name == "adam":
    opt = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  elif cfg.name == "adamw":
    return optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                       weight_decay=wd)
  else:
    _fail("name", f"unknown {cfg.name!r}; choose one of {OPTIMIZERS}.")
  return optax.chain(optax.add_decayed_weights(wd), opt) if wd else opt
