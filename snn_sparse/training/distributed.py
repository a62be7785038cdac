"""Joining a multi-process run, checking that its processes agree, and
stopping every process, with a clear message, when one of them is lost.

A multi-process run starts the same command on every process (one per host,
usually). Three ways to say how the processes find each other, in order:

1. ``config.mesh.coordinator_address`` (``HOST:PORT`` of process 0),
   ``config.mesh.num_processes`` and ``config.mesh.process_id``;
2. the environment variables ``JAX_COORDINATOR_ADDRESS``,
   ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``;
3. ``config.mesh.distributed = True``: JAX's cluster detection (SLURM,
   Open MPI, Kubernetes, Cloud TPU) fills in what 1 and 2 leave unset.

Only ``jax.distributed`` is used, so the same code runs on TPU pod slices,
GPU nodes and, with gloo collectives, CPU hosts (which is how the test suite
runs two processes on one machine).

A process that dies leaves the others blocked in a collective. Each process
therefore runs a :class:`Watchdog`: it posts a heartbeat to the coordinator's
key-value store every second and reads the others'. When one has been
silent for half of ``config.mesh.heartbeat_timeout_s`` (before JAX's own
heartbeat check would abort the process with an opaque fatal error), the
watchdog prints which process was lost and how to restart, and exits with
:data:`EXIT_PROCESS_LOST`. A process that never joins is reported the same
way after ``config.mesh.join_timeout_s``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter

import jax

from snn_sparse.training import workdir

# EX_TEMPFAIL: the run can be restarted as it is (schedulers may retry).
EXIT_PROCESS_LOST = 75

_PREFIX = "snn_sparse"


def wanted(mesh_config) -> bool:
  """Whether ``config.mesh`` (or the environment) asks for several processes."""
  return bool(mesh_config.get("distributed")
              or mesh_config.get("coordinator_address")
              or os.environ.get("JAX_COORDINATOR_ADDRESS"))


def _env_int(name: str) -> int | None:
  value = os.environ.get(name)
  if value in (None, ""):
    return None
  try:
    return int(value)
  except ValueError:
    raise ValueError(f"{name}={value!r} must be an integer.") from None


def _abort(message: str) -> None:
  """Prints ``message`` as the last output and exits the process at once.

  ``os._exit`` skips JAX's shutdown barrier, which would wait for the lost
  process (and then abort with a fatal error of its own).
  """
  sys.stdout.flush()
  print(f"\n{message}", file=sys.stderr, flush=True)
  os._exit(EXIT_PROCESS_LOST)  # pylint: disable=protected-access


def initialize(mesh_config) -> None:
  """Joins the run described by ``config.mesh`` (see the module docstring).

  On CPU the cross-process collectives use gloo. Raises a ``ValueError``
  naming the field for an incomplete or inconsistent explicit route; a
  process that cannot join within ``join_timeout_s`` exits with a message.
  """
  if jax.distributed.is_initialized():
    return
  explicit = mesh_config.get("coordinator_address", "")
  address = explicit or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
  count = mesh_config.get("num_processes", 0) or _env_int("JAX_NUM_PROCESSES")
  index = mesh_config.get("process_id", -1)
  index = index if index >= 0 else _env_int("JAX_PROCESS_ID")
  if explicit and (count is None or index is None):
    raise ValueError(
        "config.mesh.coordinator_address is set, so config.mesh.num_processes "
        "and config.mesh.process_id must be too (or JAX_NUM_PROCESSES and "
        "JAX_PROCESS_ID), unless config.mesh.distributed=True lets the "
        "cluster detection find them.")
  if count is not None and index is not None and not 0 <= index < count:
    raise ValueError(f"config.mesh.process_id: {index} is not in 0..{count - 1} "
                     f"(config.mesh.num_processes = {count}).")
  if address is not None and not mesh_config.get("distributed") and (
      count is None or index is None):
    raise ValueError(
        f"JAX_COORDINATOR_ADDRESS={address} is set, but not the number of "
        "processes and this process's id: set JAX_NUM_PROCESSES and "
        "JAX_PROCESS_ID (or config.mesh.num_processes and "
        "config.mesh.process_id), or config.mesh.distributed=True under a "
        "cluster that JAX detects (SLURM, Open MPI, Kubernetes, Cloud TPU).")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")

  join_timeout = int(mesh_config.get("join_timeout_s", 300))
  who = "this process" if index is None else f"process {index}"
  timer = threading.Timer(join_timeout, _abort, [
      f"{who} could not join the {count or 'multi'}-process run at "
      f"{address or 'the detected coordinator'} within {join_timeout} s "
      "(config.mesh.join_timeout_s): "
      + _missing(count, index)
      + "Start every process with the same command, the same coordinator "
      "address (process 0's host) and the same number of processes; each "
      "with its own process id."])
  timer.daemon = True
  timer.start()
  try:
    jax.distributed.initialize(
        coordinator_address=address, num_processes=count, process_id=index,
        # JAX aborts by itself after these; ours act first, with a message.
        initialization_timeout=join_timeout + 60,
        heartbeat_timeout_seconds=int(
            mesh_config.get("heartbeat_timeout_s", 100)))
  finally:
    timer.cancel()


def _missing(count: int | None, index: int | None) -> str:
  """Who may be missing, as seen by process ``index`` of ``count``."""
  if count is None or index is None:
    return ""
  others = [str(i) for i in range(count) if i != index]
  if len(others) == 1:
    return f"process {others[0]} did not join. "
  return f"not all of processes {', '.join(others)} joined. "


def _client():
  from jax._src import distributed  # pylint: disable=g-import-not-at-top
  return distributed.global_state.client


def check_agreement(config_json: dict) -> None:
  """Refuses a run whose processes differ in config or devices per process.

  ``config_json`` is this process's config as a JSON dict (``mesh.process_id``
  is ignored). Every process raises the same ``ValueError``, naming the
  process and the fields that differ.
  """
  n = jax.process_count()
  if n == 1:
    return
  counts = Counter(d.process_index for d in jax.devices())
  if len(set(counts.values())) > 1:
    raise ValueError(
        "The processes have different numbers of devices ("
        + ", ".join(f"process {p}: {counts[p]}" for p in sorted(counts))
        + "). Give every process the same number of devices (for example "
        "the same CUDA_VISIBLE_DEVICES count, or the same "
        "--xla_force_host_platform_device_count).")
  own = json.loads(json.dumps(config_json))
  own.get("mesh", {}).pop("process_id", None)
  client = _client()
  client.key_value_set(f"{_PREFIX}/config/{jax.process_index()}",
                       json.dumps(own, sort_keys=True))
  reference = None
  for p in range(n):
    other = json.loads(client.blocking_key_value_get(
        f"{_PREFIX}/config/{p}", 60_000))
    if reference is None:
      reference = other
    elif other != reference:
      fields = list(workdir.diff_keys(reference, other))
      raise ValueError(
          f"Process {p} was started with a different config from process 0 "
          f"(fields: {', '.join(fields)}). Start every process with the same "
          "config and overrides; only the process id may differ.")


class Watchdog:
  """Stops this process, with a message, when another process is lost.

  Every ``interval_s`` it posts this process's heartbeat and reads the
  others'. A process silent for ``timeout_s`` is lost: the message names it,
  ends with ``restart_hint``, and the process exits with
  :data:`EXIT_PROCESS_LOST`. A process that ended its run posts "done" and
  is no longer watched.
  """

  def __init__(self, timeout_s: float, restart_hint: str,
               interval_s: float = 1.0):
    self.timeout_s = timeout_s
    self.restart_hint = restart_hint
    self.interval_s = interval_s
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True,
                                    name="snn_sparse-watchdog")

  def start(self) -> "Watchdog":
    self._thread.start()
    return self

  def finish(self) -> None:
    """Stops watching and marks this process done for the others."""
    self._stop.set()
    self._thread.join()
    _client().key_value_set(f"{_PREFIX}/done/{jax.process_index()}", "1",
                            allow_overwrite=True)

  def wait(self, seconds: float) -> None:
    """Gives the watchdog ``seconds`` to find a lost process (it exits)."""
    self._thread.join(seconds)

  def _run(self) -> None:
    client = _client()
    me, n = jax.process_index(), jax.process_count()
    beat = 0
    last = {p: (None, time.monotonic()) for p in range(n) if p != me}
    while not self._stop.wait(self.interval_s):
      beat += 1
      try:
        client.key_value_set(f"{_PREFIX}/alive/{me}", str(beat),
                             allow_overwrite=True)
        for p in list(last):
          if _try_get(client, f"{_PREFIX}/done/{p}") is not None:
            del last[p]
            continue
          value = _try_get(client, f"{_PREFIX}/alive/{p}")
          now = time.monotonic()
          if value != last[p][0]:
            last[p] = (value, now)
          elif now - last[p][1] > self.timeout_s:
            _abort(f"Process {p} of {n} stopped responding: no heartbeat for "
                   f"{self.timeout_s:.0f} s. It has most likely died, or "
                   f"lost its network. Process {me} stops too. "
                   + self.restart_hint)
      except Exception as e:  # pylint: disable=broad-except
        if self._stop.is_set():
          return
        _abort(f"Process {me} of {n} lost the coordinator (process 0): "
               f"{str(e).splitlines()[0]}. " + self.restart_hint)


_watchdog: Watchdog | None = None


def watch(heartbeat_timeout_s: float, workdir: str) -> None:
  """Starts this process's :class:`Watchdog` (multi-process runs only).

  Also makes an uncaught exception end the process at once, after its
  traceback: JAX's shutdown would otherwise wait for the other processes,
  which wait in a collective for this one. A failed collective first gives
  the watchdog time to name the process that was lost.
  """
  global _watchdog
  if jax.process_count() == 1 or _watchdog is not None:
    return
  n = jax.process_count()
  _watchdog = Watchdog(
      heartbeat_timeout_s / 2,
      f"Restart all {n} processes with the same command: the run resumes "
      f"from its last checkpoint in {workdir}.").start()
  previous = sys.excepthook

  def excepthook(kind, value, tb):
    previous(kind, value, tb)
    before_exit(value)
    sys.stderr.flush()
    os._exit(1)  # pylint: disable=protected-access

  sys.excepthook = excepthook


def before_exit(error: BaseException) -> None:
  """Before a multi-process run exits on ``error``: a failed collective
  gives the watchdog time to name the process that was lost (it exits)."""
  if isinstance(error, jax.errors.JaxRuntimeError) and _watchdog:
    _watchdog.wait(_watchdog.timeout_s + 5 * _watchdog.interval_s)


def finish() -> None:
  """Ends this process's part of the run: the others stop watching it."""
  global _watchdog
  if _watchdog is not None:
    _watchdog.finish()
    _watchdog = None


def _try_get(client, key: str) -> str | None:
  try:
    return client.key_value_try_get(key)
  except Exception as e:  # pylint: disable=broad-except
    if "NOT_FOUND" in str(e) or "not found" in str(e).lower():
      return None
    raise
