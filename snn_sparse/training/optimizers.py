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
  two-stage loop (``False``: one schedule over the whole run; ``None``: the
  sparsity algorithm's default, True for ``sap``, whose rewind re-creates
  the schedule each iteration as Diao et al.'s code does, else False).

The optimizer is wrapped in ``optax.inject_hyperparams``, so its state holds
the learning rate of its last update; :func:`learning_rate` reads it (the
trainer logs it in every ``train`` event).
"""

from __future__ import annotations

import math

import jax
import optax

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "constant")


def _fail(field: str, message: str):
  raise ValueError(f"config.optimizer.{field}: {message}")


def create_schedule(cfg, *, steps_per_epoch: int, total_steps: int,
                    steps_per_iteration: int | None = None,
                    restart_each_iteration: bool | None = None
                    ) -> optax.Schedule:
  """The learning-rate schedule ``step -> lr`` described by ``cfg``.

  ``restart_each_iteration`` overrides ``cfg.restart_each_iteration`` (the
  trainer passes the resolved value when the config leaves it ``None``).
  """
  restart = (cfg.restart_each_iteration if restart_each_iteration is None
             else restart_each_iteration)
  if restart is None:
    _fail("restart_each_iteration", "is None: pass restart_each_iteration= "
          "(the trainer uses the sparsity algorithm's default).")
  if restart and not steps_per_iteration:
    _fail("restart_each_iteration", "needs steps_per_iteration.")
  period = steps_per_iteration if restart else total_steps
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
  if restart:
    return lambda step: schedule(step % period)
  return schedule


def _number(cfg, field: str, lo: float, hi: float = math.inf, *,
            lo_open: bool = False, hi_open: bool = False, why: str = ""):
  v = cfg.get(field)
  if v is None:
    return
  ok = (not isinstance(v, bool) and isinstance(v, (int, float))
        and math.isfinite(v) and (v > lo if lo_open else v >= lo)
        and (v < hi if hi_open else v <= hi))
  if not ok:
    lb, rb = "(" if lo_open else "[", ")" if hi_open else "]"
    _fail(field, f"must be a finite number in {lb}{lo}, {hi}{rb}, got "
          f"{v!r}{why}.")


def validate(cfg) -> None:
  """Raises a ``ValueError`` naming the first bad field of
  ``config.optimizer`` (before anything is built)."""
  if cfg.name not in OPTIMIZERS:
    _fail("name", f"unknown {cfg.name!r}; choose one of {OPTIMIZERS}.")
  _number(cfg, "learning_rate", 0, lo_open=True,
          why="; typical values are 0.01-0.1 for sgd, 1e-4-1e-3 for adam")
  _number(cfg, "momentum", 0, 1, hi_open=True, why=" (0: no momentum)")
  _number(cfg, "weight_decay", 0)
  _number(cfg, "b1", 0, 1, hi_open=True)
  _number(cfg, "b2", 0, 1, hi_open=True)
  _number(cfg, "eps", 0, lo_open=True)
  _number(cfg, "warmup_epochs", 0)
  _number(cfg, "step_factor", 0, lo_open=True)


def create_optimizer(cfg, *, steps_per_epoch: int, total_steps: int,
                     steps_per_iteration: int | None = None,
                     restart_each_iteration: bool | None = None
                     ) -> optax.GradientTransformation:
  """The optax transformation described by ``cfg`` (``config.optimizer``).

  ``restart_each_iteration``: see :func:`create_schedule`.
  """
  validate(cfg)
  schedule = create_schedule(cfg, steps_per_epoch=steps_per_epoch,
                             total_steps=total_steps,
                             steps_per_iteration=steps_per_iteration,
                             restart_each_iteration=restart_each_iteration)
  wd = cfg.weight_decay

  def make(learning_rate):
    if cfg.name == "adamw":
      return optax.adamw(learning_rate, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                         weight_decay=wd)
    if cfg.name == "sgd":
      opt = optax.sgd(learning_rate, momentum=cfg.momentum or None,
                      nesterov=cfg.nesterov)
    else:
      opt = optax.adam(learning_rate, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    return optax.chain(optax.add_decayed_weights(wd), opt) if wd else opt

  return optax.inject_hyperparams(make)(learning_rate=schedule)


def learning_rate(opt_state) -> jax.Array | None:
  """The learning rate of the last update of an optimizer of
  :func:`create_optimizer` (any ``optax.inject_hyperparams`` state holding a
  ``learning_rate``), or ``None`` if ``opt_state`` has none."""
  hyperparams = getattr(opt_state, "hyperparams", None)
  if isinstance(hyperparams, dict) and "learning_rate" in hyperparams:
    return hyperparams["learning_rate"]
  return None
