"""What a run writes to its workdir, and its progress line.

- ``config.json``: the run's config.
- ``metrics.jsonl``: one JSON object per log event (``"event"`` is
  ``"train"``, ``"rewire"``, ``"eval"`` or ``"iteration_end"``), each with the
  ``"step"`` it happened at. On resume, events after the restored step are
  dropped, so the file reads as if the run had never stopped.
- ``summary.json``: the per-iteration table and the best iteration.

Files are replaced atomically (write to a temporary file, then rename).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Iterable, Mapping

import numpy as np


def _default(x):
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(f"Not JSON serialisable: {type(x).__name__}")


def to_json(obj: Any) -> str:
  """``json.dumps`` that understands numpy scalars and arrays."""
  return json.dumps(obj, default=_default, sort_keys=True)


def write_json_atomic(path: str, obj: Any) -> None:
  """Writes ``obj`` as indented JSON to ``path`` via a temporary file."""
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(json.dumps(json.loads(to_json(obj)), indent=2))
    f.write("\n")
  os.replace(tmp, path)


class MetricsLog:
  """Appends events to ``metrics.jsonl`` (only when ``enabled``)."""

  def __init__(self, path: str, enabled: bool = True):
    self.path = path
    self.enabled = enabled

  def truncate_after(self, step: int) -> None:
    """Drops the events logged after ``step`` (used when resuming)."""
    if not (self.enabled and os.path.exists(self.path)):
      return
    with open(self.path) as f:
      kept = [line for line in f
              if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = f"{self.path}.tmp"
    with open(tmp, "w") as f:
      f.writelines(kept)
    os.replace(tmp, self.path)

  def write(self, event: str, *, step: int, **values) -> None:
    """Appends ``{"event": event, "step": step, **values}`` as one line."""
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write(to_json({"event": event, "step": int(step), **values}) + "\n")


def read_events(path: str, event: str | None = None) -> list[dict]:
  """The events of a ``metrics.jsonl`` file, optionally of one kind."""
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [r for r in rows if event is None or r["event"] == event]


def _duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
  """A one-line progress report: step, percentage, throughput and ETA.

  Call :meth:`update` at each report point; it prints to stderr (when
  ``enabled``) and returns the throughput since the last call (samples/s).
  """

  def __init__(self, total_steps: int, start_step: int, batch_size: int,
               enabled: bool = True, stream=None):
    self.total, self.batch_size, self.enabled = total_steps, batch_size, enabled
    self.stream = stream or sys.stderr
    self._last_step, self._last_time = start_step, time.perf_counter()

  def restart(self, step: int) -> None:
    """Restarts the clock at ``step`` (after a pause such as evaluation)."""
    self._last_step, self._last_time = step, time.perf_counter()

  def update(self, step: int, prefix: str = "",
             values: Mapping | None = None) -> float:
    now = time.perf_counter()
    rate = ((step - self._last_step) * self.batch_size /
            max(now - self._last_time, 1e-9))
    eta = (self.total - step) * self.batch_size / rate if rate else math.inf
    self._last_step, self._last_time = step, now
    if self.enabled:
      extra = "".join(f" | {k} {v:.4g}" for k, v in (values or {}).items())
      print(f"{prefix}step {step}/{self.total} "
            f"({100.0 * step / self.total:.0f}%) | {rate:.1f} samples/s | "
            f"ETA {_duration(eta)}{extra}", file=self.stream, flush=True)
    return rate


def table(rows: Iterable[Mapping], columns: list[tuple[str, str, str]]) -> str:
  """A plain-text table; ``columns`` are ``(header, key, format)``."""
  rows = list(rows)
  cells = [[h for h, _, _ in columns]] + [
      [format(r[k], f) if r.get(k) is not None else "-" for _, k, f in columns]
      for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
  return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths))
                   for line in cells)
