"""The harness: the two-stage trainer and what it needs.

* :mod:`train`: ``train_and_evaluate(config, workdir)``, the loop.
* :mod:`steps`: every jitted step of a run (``make_steps``).
* :mod:`train_state`: the trainer's state, its update and its events.
* :mod:`optimizers`: optax optimizers and schedules from a config.
* :mod:`checkpointing`, :mod:`parallel`, :mod:`reporting`,
  :mod:`plotting`: checkpoints, the device mesh, logs and figures.
"""
