"""experiments/main.py as a user meets it: --help lists the configs, a
misspelt field names the real one, and a run's screen is quiet: the config
line, one progress bar on a terminal (one line per log interval otherwise),
the table; the workdir gets summary.png and TensorBoard files."""

import fcntl
import importlib
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import pytest

from snn_sparse.data import pipeline
from snn_sparse.training import tensorboard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join("experiments", "configs", "default.py")
# A short run of the default job.
SHORT = ["--config.model.name=mlp", "--config.time_steps=2",
         "--config.num_iterations=2", "--config.epochs_per_iteration=1",
         "--config.sparsity.rewire_every=10", "--config.log_every_steps=5"]
# What other libraries' log lines start with (absl's prefix: I0123 12:34:56).
LOG_LINE = re.compile(r"^[IWEF]\d{4} |orbax|INFO|WARNING")


def _run(args, **kw):
  return subprocess.run([sys.executable, "-m", "experiments.main", *args],
                        cwd=ROOT, capture_output=True, text=True, check=False,
                        **kw)


@pytest.fixture(scope="module", autouse=True)
def _digits_built():
  # Building a dataset prints its own lines, once per data directory.
  next(pipeline.eval_batches("digits", batch_size=360))


def test_help_lists_the_configs():
  result = _run(["--help"])
  names = sorted(n for n in os.listdir(os.path.join(ROOT, "experiments",
                                                    "configs"))
                 if n.endswith(".py") and not n.startswith("_"))
  assert {"default.py", "cifar10_resnet19.py", "dvs_cifar10_vggsnn.py"} <= set(
      names)
  for name in names:
    module = importlib.import_module(f"experiments.configs.{name[:-3]}")
    description = module.__doc__.strip().splitlines()[0]
    assert re.search(rf"^  {re.escape(name)} +{re.escape(description)}$",
                     result.stdout, re.M), name


def test_a_misspelt_field_names_the_closest_one(tmp_path):
  result = _run(["--config", CONFIG, "--workdir", str(tmp_path),
                 "--config.sparsity.algoritm=rigl"])
  assert result.returncode == 1
  assert result.stderr.startswith(
      f"FATAL Flags parsing error: {CONFIG} has no field 'sparsity.algoritm'."
      " Did you mean --config.sparsity.algorithm?\n")
  assert "Traceback" not in result.stderr
  assert not os.listdir(tmp_path)
  # Nothing close: the section's fields are listed.
  result = _run(["--config", CONFIG, "--workdir", str(tmp_path),
                 "--config.data.zzzz=1"])
  assert result.returncode == 1
  assert (f"{CONFIG} has no field 'data.zzzz'. The fields of config.data are:"
          " augment, batch_size," in result.stderr)


def _screen(text):
  """The lines left on a terminal: each carriage return redraws its line."""
  return [line.split("\r")[-1] for line in
          text.replace("\r\n", "\n").rstrip("\n").split("\n")]


def test_a_terminal_gets_one_bar_and_the_table(tmp_path):
  workdir = tmp_path / "run"
  controller, terminal = pty.openpty()
  fcntl.ioctl(terminal, termios.TIOCSWINSZ,
              struct.pack("HHHH", 40, 100, 0, 0))  # 40 rows, 100 columns
  env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
  proc = subprocess.Popen(
      [sys.executable, "-m", "experiments.main", "--config", CONFIG,
       "--workdir", str(workdir), *SHORT], cwd=ROOT, stdin=terminal,
      stdout=terminal, stderr=terminal, env=env)
  os.close(terminal)
  chunks = []
  while True:
    ready, _, _ = select.select([controller], [], [], 300)
    if not ready:
      proc.kill()
      break
    try:
      data = os.read(controller, 65536)
    except OSError:  # the terminal closed
      break
    if not data:
      break
    chunks.append(data)
  assert proc.wait(timeout=60) == 0
  os.close(controller)
  screen = _screen(b"".join(chunks).decode())
  assert screen[0].startswith(f"{CONFIG}: digits | mlp, T=2 | pq_dst")
  bars = [l for l in screen if "%|" in l]
  assert len(bars) == 1
  assert re.match(r"iteration 2 100%\|.*\| step 40/40 \[.*samples/s, "
                  r"accuracy [\d.]+, loss [\d.]+\]", bars[0])
  assert screen[2].startswith("Best iteration")
  assert screen[3].split()[:3] == ["iter", "val", "acc"]
  assert len(screen) == 1 + 1 + 1 + 1 + 2  # config, bar, best, table
  assert not [l for l in screen if LOG_LINE.search(l)]
  assert (workdir / "summary.png").stat().st_size > 20_000
  if tensorboard.available():
    scalars = tensorboard.read_scalars(str(workdir / "tensorboard"))
    assert [s for s, _ in scalars["train/loss"]] == list(range(5, 41, 5))
    assert [s for s, _ in scalars["eval/test_accuracy"]] == [20, 40]
    assert {"density/Dense_0/kernel", "pq_index/Dense_1/kernel",
            "rewire/pq_index/Dense_0/kernel"} <= set(scalars)


def test_a_log_file_gets_one_line_per_interval(tmp_path):
  result = _run(["--config", CONFIG, "--workdir", str(tmp_path), *SHORT])
  assert result.returncode == 0, result.stderr[-2000:]
  out, err = result.stdout.splitlines(), result.stderr.splitlines()
  assert out[0].startswith(f"{CONFIG}: digits | mlp, T=2 | pq_dst")
  assert out[1].startswith("Best iteration") and len(out) == 2 + 3
  assert [l.split(" | ")[0] for l in err] == [
      f"[iteration {1 + (s - 1) // 20}] step {s}/40 ({100 * s / 40:.0f}%)"
      for s in range(5, 41, 5)]
  # Asked for, the other libraries' INFO logs come back.
  verbose = _run(["--config", CONFIG, "--workdir", str(tmp_path), *SHORT,
                  "--verbosity=0"])
  assert verbose.returncode == 0
  assert "Resuming at step 40/40." in verbose.stderr
  assert [l for l in verbose.stderr.splitlines() if LOG_LINE.search(l)]
