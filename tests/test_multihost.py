"""Several processes on JAX's distributed runtime, on loopback.

Each process is a fresh Python with two forced CPU devices; the processes
join through ``config.mesh.coordinator_address`` and run gloo collectives, so
two processes form one 4-device mesh. They are compared with one process
with four devices: the same global batches, so the same trajectory.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = textwrap.dedent("""
    import json, os, signal, sys
    from experiments.configs import default
    from snn_sparse.training import train

    def config(process_id=-1, num_processes=0, port=0, **mesh):
      c = default.get_config()  # The default job, shortened:
      c.time_steps = 2
      c.num_iterations = 2
      c.epochs_per_iteration = 1  # 20 steps per iteration
      c.log_every_steps = 7
      c.sparsity.rewire_every = 5  # rewiring at steps 5, 10, 15
      if num_processes:
        c.mesh.coordinator_address = f"127.0.0.1:{port}"
        c.mesh.num_processes = num_processes
        c.mesh.process_id = process_id
      for k, v in mesh.items():
        setattr(c.mesh, k, v)
      return c
""")


def _free_port() -> int:
  """A free port in 61440..65535, the range of JAX's SLURM detection."""
  for port in random.sample(range(61440, 65536), 4096):
    with socket.socket() as s:
      try:
        s.bind(("", port))
      except OSError:
        continue
      return port
  raise RuntimeError("no free port")


def _start(script: str, *args, devices: int):
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  return subprocess.Popen(
      [sys.executable, "-c", PRELUDE + textwrap.dedent(script)]
      + [str(a) for a in args], cwd=ROOT, env=env, text=True,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(procs, timeout=600):
  outs = [p.communicate(timeout=timeout) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  return [out for out, _ in outs]


def _processes(script: str, workdir, n: int = 2, devices: int = 2):
  """Runs ``script`` as ``n`` joined processes; its args: id, n, port, dir."""
  port = _free_port()
  return _wait([_start(script, i, n, port, workdir, devices=devices)
                for i in range(n)])


def _one_process(script: str, workdir, devices: int = 4):
  """One process; it too joins a (1-process) run, so that its collectives
  are gloo's, which reduce in the same order as across processes."""
  return _wait([_start(script, 0, 1, _free_port(), workdir,
                       devices=devices)])[0]


RUN = """
    i, n, port, workdir = int(sys.argv[1]), *map(int, sys.argv[2:4]), sys.argv[4]
    if os.environ.get("ROUTE") == "env" and n:  # The environment route.
      os.environ.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                        JAX_NUM_PROCESSES=str(n), JAX_PROCESS_ID=str(i))
      n = 0
    mesh = json.loads(os.environ.get("MESH", "{}"))
    if os.environ.get("ROUTE") == "slurm" and n:  # JAX's cluster detection.
      os.environ.update(  # srun sets these; the port comes from the job id.
          SLURM_JOB_ID=str(port - 61440), SLURM_STEP_NODELIST="localhost",
          SLURM_NTASKS=str(n), SLURM_PROCID=str(i), SLURM_LOCALID="0",
          SLURM_STEP_NUM_NODES=str(n))
      n, mesh["distributed"] = 0, True
    c = config(i, n, port, **mesh)
    c.optimizer.learning_rate *= float(os.environ.get("LR_TIMES_ID_PLUS_1", 0)) * i + 1
    if i == int(os.environ.get("DIE_AT_BATCH_IN", -1)):
      batches = train.pipeline.train_batches
      def dying(*args, **kwargs):  # SIGKILL, as an out-of-memory kill.
        for k, batch in enumerate(batches(*args, **kwargs)):
          if k == int(os.environ.get("DIE_AT_BATCH", 8)):
            os.kill(os.getpid(), signal.SIGKILL)
          yield batch
      train.pipeline.train_batches = dying
    stop = int(os.environ.get("STOP_AFTER", 0)) or None
    try:
      train.train_and_evaluate(c, workdir, stop_after_steps=stop)
    except ValueError as e:
      print("ERROR:", e)
"""


def _events(workdir, kind):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r["event"] == kind]


def _assert_same_run(a, b):
  for kind in ("rewire", "iteration_end"):
    ea, eb = _events(a, kind), _events(b, kind)
    assert ea and [(r["step"], r["mask_fingerprint"]) for r in ea] == [
        (r["step"], r["mask_fingerprint"]) for r in eb]
  ta, tb = _events(a, "train"), _events(b, "train")
  assert [r["step"] for r in ta] == [r["step"] for r in tb]
  for ra, rb in zip(ta, tb):
    assert ra["loss"] == pytest.approx(rb["loss"], abs=1e-5)
  sa, sb = (json.load(open(os.path.join(w, "summary.json"))) for w in (a, b))
  for ra, rb in zip(sa["iterations"], sb["iterations"], strict=True):
    for key in ("connectivity", "nonzero_params", "val_accuracy",
                "test_accuracy"):
      assert ra[key] == rb[key], key


def test_two_processes_match_one(tmp_path):
  two, one = str(tmp_path / "two"), str(tmp_path / "one")
  _processes(RUN, two)
  _one_process(RUN, one)
  _assert_same_run(two, one)
  # Only process 0 wrote the run's files; orbax wrote both processes' data.
  assert sorted(os.listdir(two)) == sorted(os.listdir(one))
  assert len(_events(two, "train")) == len(_events(one, "train"))


def test_checkpoints_move_between_process_counts(tmp_path, monkeypatch):
  full, a, b = (str(tmp_path / d) for d in ("full", "a", "b"))
  _one_process(RUN, full)
  monkeypatch.setenv("ROUTE", "env")  # JAX_COORDINATOR_ADDRESS & co.
  monkeypatch.setenv("STOP_AFTER", "14")  # a multiple of log_every_steps
  _processes(RUN, a)  # 2 processes, preempted after step 14 ...
  _one_process(RUN, b)  # ... and 1 process, likewise.
  monkeypatch.delenv("STOP_AFTER")
  _one_process(RUN, a)  # Resumed by 1 process,
  _processes(RUN, b)  # and by 2.
  _assert_same_run(a, full)
  _assert_same_run(b, full)


def test_a_lost_process_stops_the_others_with_a_message(tmp_path,
                                                       monkeypatch):
  monkeypatch.setenv("DIE_AT_BATCH_IN", "1")  # Process 1 dies at step 25,
  monkeypatch.setenv("DIE_AT_BATCH", "24")  # after the step-20 checkpoint.
  monkeypatch.setenv("MESH", '{"heartbeat_timeout_s": 10}')
  port = _free_port()
  procs = [_start(RUN, i, 2, port, tmp_path, devices=2) for i in (0, 1)]
  procs[1].wait(timeout=600)
  died = time.monotonic()
  assert procs[1].returncode == -signal.SIGKILL
  _, err = procs[0].communicate(timeout=120)
  elapsed = time.monotonic() - died
  assert procs[0].returncode == 75, err[-3000:]
  last = err.strip().splitlines()[-1]
  assert "Process 1 of 2 stopped responding" in last, err[-3000:]
  assert "Restart all 2 processes with the same command" in last
  assert str(tmp_path) in last
  assert elapsed < 60  # heartbeat_timeout_s / 2, plus one collective
  # Restarted with the same command, the run resumes from its checkpoint.
  monkeypatch.delenv("DIE_AT_BATCH_IN")
  _processes(RUN, tmp_path)
  steps = [r["step"] for r in _events(tmp_path, "train")]
  assert steps == [7, 14, 20, 21, 28, 35, 40]
  assert len(json.load(open(tmp_path / "summary.json"))["iterations"]) == 2


def test_processes_must_agree(tmp_path, monkeypatch):
  monkeypatch.setenv("ROUTE", "slurm")
  monkeypatch.setenv("LR_TIMES_ID_PLUS_1", "1")  # Process 1: twice the rate.
  for out in _processes(RUN, tmp_path):
    assert ("ERROR: Process 1 was started with a different config from "
            "process 0 (fields: optimizer.learning_rate)") in out
  assert not os.path.exists(tmp_path / "metrics.jsonl")


def test_processes_must_have_as_many_devices(tmp_path):
  port = _free_port()
  outs = _wait([_start(RUN, i, 2, port, tmp_path, devices=2 - i)
                for i in (0, 1)])
  for out in outs:
    assert ("ERROR: The processes have different numbers of devices "
            "(process 0: 2, process 1: 1)") in out


def test_a_process_that_never_joins_is_named(tmp_path, monkeypatch):
  monkeypatch.setenv("MESH", '{"join_timeout_s": 5}')
  proc = _start(RUN, 0, 2, _free_port(), tmp_path, devices=2)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 75, err[-3000:]
  last = err.strip().splitlines()[-1]
  assert "process 0 could not join the 2-process run" in last
  assert "process 1 did not join" in last


@pytest.mark.parametrize("env,message", [
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1"},
     "set JAX_NUM_PROCESSES and JAX_PROCESS_ID"),
    ({"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2",
      "JAX_PROCESS_ID": "2"}, "config.mesh.process_id: 2 is not in 0..1"),
])
def test_an_incomplete_route_is_refused(tmp_path, env, message):
  from experiments.configs import default  # pylint: disable=import-outside-toplevel
  from snn_sparse.training import distributed  # pylint: disable=import-outside-toplevel
  for k, v in env.items():
    os.environ[k] = v
  try:
    mesh = default.get_config().mesh
    assert distributed.wanted(mesh)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
      distributed.initialize(mesh)
  finally:
    for k in env:
      del os.environ[k]
