"""The workdir as a run's property: one run at a time, and the config that
an earlier run left there.

A run holds an exclusive lock on ``<workdir>/.lock`` (``fcntl.flock``) from
its start to its end. The kernel drops the lock when the process ends, in
any way (a kill included), so a crashed run never leaves it stuck. In a
multi-process run only process 0 takes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from typing import Iterator

LOCK = ".lock"


@contextlib.contextmanager
def locked(workdir: str, enabled: bool = True) -> Iterator[None]:
  """Holds ``workdir``'s lock for the ``with`` block (creates ``workdir``).

  Raises a ``RuntimeError`` naming the holder (host, pid, start time) when
  another run holds it.
  """
  if not enabled:
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 512, 0).decode(errors="replace").strip()
      raise RuntimeError(
          f"Another run is using {workdir} ({holder or 'holder unknown'}). "
          "Wait for it to end, or give this run another --workdir.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, (f"host {socket.gethostname()}, pid {os.getpid()}, since "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S')}").encode(), 0)
    yield
  finally:
    os.close(fd)  # Also releases the lock.


def holder(workdir: str) -> str | None:
  """Who holds ``workdir``'s lock ("host H, pid P, since T"), or ``None``
  when no run does. Reads only."""
  path = os.path.join(workdir, LOCK)
  if not os.path.exists(path):
    return None
  fd = os.open(path, os.O_RDONLY)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
      return os.pread(fd, 512, 0).decode(errors="replace").strip() or "?"
    return None
  finally:
    os.close(fd)


def diff_keys(a, b, prefix: str = ""):
  """The dotted paths at which two JSON trees differ."""
  if isinstance(a, dict) and isinstance(b, dict):
    for k in sorted(set(a) | set(b)):
      yield from diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
  elif a != b:
    yield prefix.rstrip(".")


def check_same_config(workdir: str, config_json: dict) -> None:
  """Refuses to resume a workdir whose run had another config.

  ``config_json``: this run's config as a JSON dict. The ``mesh`` section
  may differ (a run resumes on any devices). Raises a ``ValueError`` naming
  the fields, or ``config.json`` itself when it cannot be read.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(
        f"{path} cannot be read ({type(e).__name__}: {e}), so this workdir "
        "cannot be checked for resuming. If it is this run's config, "
        "restore it; otherwise delete the workdir, or use a new --workdir."
    ) from None
  old, new = dict(old), dict(config_json)
  old.pop("mesh", None)
  new.pop("mesh", None)
  diff = list(diff_keys(old, new))
  if diff:
    raise ValueError(
        f"{workdir} holds a run with a different config (fields: "
        f"{', '.join(diff)}). Use a new --workdir, or delete {workdir} to "
        "start over.")
