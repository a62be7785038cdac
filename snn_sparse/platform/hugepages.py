"""Transparent huge pages for the host memory of XLA CPU (Linux, glibc).

XLA CPU allocates the buffers of a compiled step afresh on every call. glibc
serves each allocation above 32 MiB with a new ``mmap``, so every step faults
in every 4 KiB page of its temporaries and the kernel zeroes each one: about
a million page faults per ResNet19 train step at batch 32, a fifth of the
step. glibc's tunable ``glibc.malloc.hugetlb=1`` makes malloc ask for
transparent huge pages (``madvise``), so a fault brings in 2 MiB instead of
4 KiB: a hundred times fewer faults, the same resident memory.

Tunables are read only when a process starts. :func:`reexec` therefore
starts the launcher's own command again, once, with the tunable set; the
launchers (``experiments/main.py``, ``experiments/benchmark.py``) call it
first. ``SNN_SPARSE_HUGEPAGES=0`` turns it off. Elsewhere (not Linux, no
glibc, transparent huge pages disabled, or the tunable already set) it does
nothing.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Mapping

TUNABLE = "glibc.malloc.hugetlb"
OPT_OUT = "SNN_SPARSE_HUGEPAGES"
_THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def _thp_available(path: str = _THP_MODE) -> bool:
  """The kernel offers transparent huge pages (mode ``always`` or ``madvise``)."""
  try:
    with open(path) as f:
      return "[never]" not in f.read()
  except OSError:
    return False


def tunables(env: Mapping[str, str]) -> str | None:
  """``GLIBC_TUNABLES`` with huge pages added, or None if nothing to add.

  None when ``env`` opts out (``SNN_SPARSE_HUGEPAGES=0``) or already sets
  ``glibc.malloc.hugetlb`` (to any value: the user's choice stands).
  """
  if env.get(OPT_OUT, "1") == "0":
    return None
  current = env.get("GLIBC_TUNABLES", "")
  names = [item.split("=", 1)[0] for item in current.split(":") if item]
  if TUNABLE in names:
    return None
  return ":".join(filter(None, [current, f"{TUNABLE}=1"]))


def status(env: Mapping[str, str] | None = None) -> str:
  """``"hugepages"`` if this process runs with the tunable on, else ``"system"``."""
  env = os.environ if env is None else env
  items = env.get("GLIBC_TUNABLES", "").split(":")
  return "hugepages" if f"{TUNABLE}=1" in items else "system"


def reexec() -> None:
  """Replaces this process by its own command with huge pages on (see above).

  Call it first thing in a launcher's ``__main__``: nothing before it is
  kept. Returns without doing anything where it does not apply.
  """
  value = tunables(os.environ)
  if (value is None or sys.platform != "linux"
      or platform.libc_ver()[0] != "glibc" or not _thp_available()):
    return
  env = dict(os.environ, GLIBC_TUNABLES=value)
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, list(sys.orig_argv), env)
