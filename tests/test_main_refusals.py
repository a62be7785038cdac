"""experiments/main.py when something is wrong: one short paragraph at the
end, no traceback unless asked; --check_config lists every problem; SIGTERM
saves, exits 75, and the same command resumes."""

import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join("experiments", "configs", "default.py")
SHORT = ["--config.model.name=mlp", "--config.time_steps=2",
         "--config.num_iterations=2", "--config.epochs_per_iteration=1",
         "--config.sparsity.rewire_every=10", "--config.log_every_steps=5"]


def _cmd(workdir, *args):
  return [sys.executable, "-m", "experiments.main", f"--config={CONFIG}",
          f"--workdir={workdir}", *SHORT, *args]


def _run(workdir, *args):
  return subprocess.run(_cmd(workdir, *args), cwd=ROOT, capture_output=True,
                        text=True, check=False, timeout=600)


def test_a_refusal_is_one_paragraph_at_the_end(tmp_path):
  result = _run(tmp_path / "w", "--config.optimizer.learning_rate=nan")
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  tail = result.stderr.strip().split("\n\n")[-1].splitlines()
  assert tail == [
      "config.optimizer.learning_rate: must be a finite number in (0, inf], "
      "got nan; typical values are 0.01-0.1 for sgd, 1e-4-1e-3 for adam.",
      "(--verbosity=0 shows the traceback.)"]
  assert not (tmp_path / "w").exists()  # Refused before writing anything.
  verbose = _run(tmp_path / "v", "--config.optimizer.learning_rate=nan",
                 "--verbosity=0")
  assert "Traceback" in verbose.stderr


def test_check_config_lists_every_problem(tmp_path):
  result = _run(tmp_path / "w", "--check_config",
                "--config.optimizer.momentum=-0.5", "--config.model.tau=0",
                "--config.data.manual_dir=/nonexistent/digits")
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert lines[-1] == "3 problem(s) found."
  assert [line.split(":")[0] for line in lines[-4:-1]] == [
      "- config.optimizer.momentum", "- config.model.tau",
      "- config.data.manual_dir"]
  assert not (tmp_path / "w").exists()
  ok = _run(tmp_path / "w", "--check_config")
  assert ok.returncode == 0, ok.stderr
  assert "No problem found" in ok.stdout
  assert not (tmp_path / "w").exists()


def test_sigterm_saves_then_the_same_command_resumes(tmp_path):
  workdir = tmp_path / "w"
  proc = subprocess.Popen(_cmd(workdir), cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  # Wait for the first progress line (step 5), then preempt.
  metrics = workdir / "metrics.jsonl"
  deadline = time.monotonic() + 300
  while not (metrics.exists() and metrics.read_text().strip()):
    assert proc.poll() is None and time.monotonic() < deadline
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 75, err[-2000:]
  last = err.strip().splitlines()[-1]
  assert last.startswith("Stopped by SIGTERM after step ")
  assert last.endswith("Run the same command again to resume.")
  again = _run(workdir)
  assert again.returncode == 0, again.stderr[-2000:]
  rows = json.load(open(workdir / "summary.json"))["iterations"]
  assert [r["iteration"] for r in rows] == [1, 2]
  steps = [json.loads(line)["step"] for line in open(metrics)
           if json.loads(line)["event"] == "train"]
  assert steps == [5, 10, 15, 20, 25, 30, 35, 40]
