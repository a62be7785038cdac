"""SIGTERM and SIGINT stop a run cleanly: a checkpoint, then an exit.

A preempted SLURM job gets SIGTERM, and Ctrl-C sends SIGINT. While
:class:`StopOnSignal` is active, either one only asks the run to stop: the
trainer saves a checkpoint at the next step boundary (in a multi-process
run, at the next log boundary, where the processes agree on it) and raises
:class:`Interrupted`. Started again, the run resumes exactly where it
stopped. A second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import signal
import threading

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(RuntimeError):
  """The run stopped on a signal, after saving a checkpoint."""


class StopOnSignal:
  """Context manager: SIGTERM / SIGINT set a flag instead of killing.

  Only the main thread can install signal handlers; elsewhere (a notebook
  worker thread, for instance) the manager does nothing.
  """

  def __init__(self):
    self.received: str | None = None
    self._previous = {}

  def __enter__(self) -> "StopOnSignal":
    if threading.current_thread() is threading.main_thread():
      for sig in SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}

  def _handle(self, signum, frame):
    if self.received and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.received = signal.Signals(signum).name
    logging.warning("%s received: saving a checkpoint, then stopping (Ctrl-C "
                    "again to stop at once).", self.received)

  def should_stop(self, at_log_boundary: bool) -> bool:
    """Whether to stop now. Collective in a multi-process run: every
    process calls it at every step, and all get the same answer."""
    if jax.process_count() == 1:
      return self.received is not None
    if not at_log_boundary:
      return False
    flags = multihost_utils.process_allgather(
        np.array(self.received is not None))
    return bool(np.any(flags))
