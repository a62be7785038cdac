"""Bad input is refused before anything compiles; runs guard themselves.

Every case runs the trainer's own entry point, ``train.train_and_evaluate``.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import default
from snn_sparse.training import checkpointing, reporting, steps, train
from snn_sparse.training import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides):
  config = default.get_config()
  config.model.name = "mlp"
  config.model.features = (64,)
  config.time_steps = 2
  config.num_iterations = 2
  config.epochs_per_iteration = 1  # 20 steps per iteration
  config.log_every_steps = 5
  config.sparsity.rewire_every = 5
  config.update_from_flattened_dict(overrides)
  return config


BAD = [
    ("optimizer.learning_rate", float("nan"),
     "config.optimizer.learning_rate: must be a finite number in (0, inf]"),
    ("optimizer.learning_rate", -0.1, "config.optimizer.learning_rate"),
    ("optimizer.learning_rate", float("inf"), "got inf"),
    ("optimizer.momentum", -0.5,
     "config.optimizer.momentum: must be a finite number in [0, 1)"),
    ("optimizer.momentum", 1.0, "config.optimizer.momentum"),
    ("optimizer.weight_decay", float("nan"), "config.optimizer.weight_decay"),
    ("optimizer.name", "sgdd", "config.optimizer.name: unknown 'sgdd'"),
    ("model.tau", 0.0, "config.model.tau: must be a finite number > 1"),
    ("model.tau", 0.5, "config.model.tau"),
    ("model.name", "nosuch", "Unknown model 'nosuch'"),
    ("model.v_threshold", float("nan"), "config.model.v_threshold"),
    ("data.manual_dir", "/nonexistent/fashion", "config.data.manual_dir: "
     "/nonexistent/fashion does not exist"),
    ("data.batch_size", 0, "config.data.batch_size: must be >= 1"),
    ("data.validation_fraction", 1.5, "config.data.validation_fraction"),
    ("data.name", "nosuchdata", "nosuchdata"),
    ("sparsity.pattern", "kernel[", "sparsity.pattern: 'kernel[' is not a "
     "valid regex"),
    ("sparsity.p", float("nan"), "sparsity.p: must be a finite number"),
    ("sparsity.algorithm", "nosuch", "nosuch"),
    ("max_to_keep", 0, "config.max_to_keep: 0"),
    ("time_steps", 0, "config.time_steps: must be a positive integer"),
    ("loss", "mse", "config.loss: unknown 'mse'"),
    ("log_every_steps", 0, "config.log_every_steps: must be >= 1"),
    ("checkpoint_every_steps", 7, "config.checkpoint_every_steps: 7 must be "
     "a multiple of log_every_steps"),
    ("divergence.action", "explode", "config.divergence.action: unknown"),
    ("divergence.factor", 0.5, "config.divergence.factor"),
]


@pytest.mark.parametrize("field,value,message", BAD,
                         ids=[f"{f}={v}" for f, v, _ in BAD])
def test_bad_input_is_refused_before_compiling(tmp_path, monkeypatch, field,
                                               value, message):
  def compiled(*args, **kwargs):
    raise AssertionError("compiled before refusing")
  monkeypatch.setattr(train, "initial_state", compiled)
  monkeypatch.setattr(jax, "jit", compiled)
  with pytest.raises((ValueError, KeyError)) as error:
    train.train_and_evaluate(_config(**{field: value}), str(tmp_path / "w"))
  assert message in str(error.value)
  # Nothing was written but the lock.
  written = os.listdir(tmp_path / "w") if (tmp_path / "w").exists() else []
  assert set(written) <= {workdir_lib.LOCK}


def test_a_second_run_on_the_same_workdir_is_refused(tmp_path):
  with workdir_lib.locked(str(tmp_path)):
    with pytest.raises(RuntimeError, match=r"Another run is using .* \(host "
                       r".*, pid \d+, since .*\)\. Wait for it to end"):
      train.train_and_evaluate(_config(), str(tmp_path))


def test_a_killed_run_does_not_leave_the_lock_stuck(tmp_path):
  script = textwrap.dedent(f"""
      import os, signal
      from snn_sparse.training import workdir
      with workdir.locked({str(tmp_path)!r}):
        os.kill(os.getpid(), signal.SIGKILL)
  """)
  out = subprocess.run([sys.executable, "-c", script], cwd=ROOT)
  assert out.returncode == -signal.SIGKILL
  assert (tmp_path / workdir_lib.LOCK).exists()
  with workdir_lib.locked(str(tmp_path)):  # Free again.
    pass


def test_a_corrupt_config_json_is_named(tmp_path):
  train.train_and_evaluate(_config(), str(tmp_path), stop_after_steps=5)
  (tmp_path / "config.json").write_text('{"seed": 0, "da')
  with pytest.raises(ValueError, match=r"config\.json cannot be read .* "
                     "use a new --workdir"):
    train.train_and_evaluate(_config(), str(tmp_path))


def test_first_nonfinite_by_hand():
  params = {"a": {"kernel": jnp.ones(3)}, "b": {"kernel": jnp.ones(2)}}
  grads = {"a": {"kernel": jnp.ones(3)},
           "b": {"kernel": jnp.array([1.0, jnp.inf])}}
  names = steps.nonfinite_names(params)
  assert names == ["the loss", "the gradient of a/kernel",
                   "the gradient of b/kernel", "the parameter a/kernel",
                   "the parameter b/kernel"]
  first = lambda loss, g, p: int(steps.first_nonfinite(jnp.float32(loss), g,
                                                       p))
  assert first(1.0, params, params) == -1
  assert first(1.0, grads, params) == 2
  assert first(np.nan, grads, params) == 0
  bad = {"a": {"kernel": jnp.array([0.0, jnp.nan, 0.0])},
         "b": {"kernel": jnp.ones(2)}}
  assert first(1.0, params, bad) == 3


@pytest.mark.parametrize("bad_step,note", [
    (8, "No checkpoint was written before it."),
    (28, "The checkpoints up to step 20 are in "),
])
def test_a_nan_is_caught_at_its_step(tmp_path, monkeypatch, bad_step, note):
  batches = train.pipeline.train_batches

  def one_bad_batch(*args, **kwargs):  # A corrupt example in the data.
    for k, batch in enumerate(batches(*args, **kwargs)):
      if k + 1 == bad_step:
        batch = dict(batch, input=np.full_like(batch["input"], np.nan))
      yield batch
  monkeypatch.setattr(train.pipeline, "train_batches", one_bad_batch)
  with pytest.raises(FloatingPointError) as error:
    train.train_and_evaluate(_config(), str(tmp_path))
  message = str(error.value)
  # NaN inputs never reach the threshold: no spikes, a finite loss, but
  # NaN gradients (the first leaf in path order is Dense_0/bias).
  assert message.startswith(
      "The gradient of Dense_0/bias is not finite (NaN or Inf) after step "
      f"{bad_step}. Lower "
      "config.optimizer.learning_rate (now 0.05), or check the data")
  assert note in message


def test_divergence_stops_or_warns(tmp_path, caplog):
  config = _config(**{"optimizer.learning_rate": 1e6})
  with pytest.raises(FloatingPointError, match=r"averaged .* over the log "
                     r"interval ending at step 5, more than "
                     r"config.divergence.factor = 10 times the loss of chance "
                     r"\(ln 10 = 2.303\): training has diverged"):
    train.train_and_evaluate(config, str(tmp_path / "stop"))
  config.divergence.action = "warn"
  train.train_and_evaluate(config, str(tmp_path / "warn"))
  assert caplog.text.count("training has diverged") == 1


def test_checkpoint_on_a_full_disk_says_so(tmp_path, monkeypatch):
  ckpt = checkpointing.Checkpointer(str(tmp_path / "ckpt"))

  def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(ckpt._manager, "save", full)
  state = train.initial_state(*_initial_parts())
  with pytest.raises(OSError, match=r"^The disk is full: no space left on "
                     rf"device while saving the checkpoint of step 0 in "
                     rf"{tmp_path / 'ckpt'}\."):
    ckpt.save(state, {})


def _initial_parts():
  from snn_sparse import sparsity  # pylint: disable=import-outside-toplevel
  config = _config()
  model = train.create_model(config, 10)
  algo = sparsity.from_config(config.sparsity, total_steps=40,
                              steps_per_iteration=20)
  tx = train.create_optimizer(config, algo, steps_per_epoch=20,
                              steps_per_iteration=20, total_steps=40)
  return config, model, algo, tx, (8, 8, 1)


def test_sigterm_saves_and_the_restart_resumes_bit_exact(tmp_path,
                                                         monkeypatch):
  before = signal.getsignal(signal.SIGTERM)
  full = train.train_and_evaluate(_config(), str(tmp_path / "full"))
  batches = train.pipeline.train_batches

  def terminated_at_batch_13(*args, **kwargs):
    for k, batch in enumerate(batches(*args, **kwargs)):
      if k == 12 and kwargs["start_step"] == 0:
        os.kill(os.getpid(), signal.SIGTERM)
      yield batch
  monkeypatch.setattr(train.pipeline, "train_batches", terminated_at_batch_13)
  with pytest.raises(train.preemption.Interrupted,
                     match=r"Stopped by SIGTERM after step 13; the checkpoint "
                     r"is in .*Run the same command again to resume\."):
    train.train_and_evaluate(_config(), str(tmp_path / "cut"))
  assert checkpointing.Checkpointer(
      str(tmp_path / "cut" / "checkpoints")).latest_step() == 13
  resumed = train.train_and_evaluate(_config(), str(tmp_path / "cut"))
  # The handlers are restored after the run.
  assert signal.getsignal(signal.SIGTERM) == before
  assert [r["test_loss"] for r in resumed["iterations"]] == [
      r["test_loss"] for r in full["iterations"]]
  strip = lambda e: {k: v for k, v in e.items()
                     if k not in ("samples_per_s", "eval_seconds", "time")}
  events = lambda w: [strip(e) for e in reporting.read_events(
      str(tmp_path / w / "metrics.jsonl"))]
  assert events("cut") == events("full")
