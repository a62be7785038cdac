"""What a run writes to its workdir, and what it shows while it runs.

- ``config.json``: the run's config.
- ``metrics.jsonl``: one JSON object per log event (``"event"`` is
  ``"train"``, ``"rewire"``, ``"eval"`` or ``"iteration_end"``), each with the
  ``"step"`` it happened at. On resume, events after the restored step are
  dropped, so the file reads as if the run had never stopped.
- ``summary.json``: the per-iteration table and the best iteration.

Files are replaced atomically (write to a temporary file, then rename).
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
from typing import Any, Iterable, Mapping

from absl import logging
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
  """Appends events to ``metrics.jsonl`` (only when ``enabled``).

  With ``tensorboard_dir`` and tensorboardX installed (the ``[tb]`` extra),
  every event is also written there as TensorBoard scalars
  (:mod:`snn_sparse.training.tensorboard`); without tensorboardX that
  directory is not created.
  """

  def __init__(self, path: str, enabled: bool = True,
               tensorboard_dir: str | None = None):
    self.path = path
    self.enabled = enabled
    self.tensorboard_dir = tensorboard_dir
    self._tb = None
    self._purge_step = None

  def truncate_after(self, step: int) -> None:
    """Drops the events logged after ``step`` (used when resuming).

    A last line left incomplete by a killed run is dropped too, and the
    TensorBoard file (if any) hides the dropped steps.
    """
    if not self.enabled:
      return
    self._purge_step = step + 1
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      kept = [line + "\n" for line, e in _parse_lines(f.read(), self.path,
                                                          warn=True)
              if e.get("step", 0) <= step]
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
    tb = self._tensorboard()
    if tb is not None:
      tb.write(event, step, values)

  def close(self) -> None:
    """Closes the TensorBoard file, if one is open (writes are never held)."""
    if self._tb:
      self._tb.close()
    self._tb = None

  def _tensorboard(self):
    if self._tb is None and self.tensorboard_dir:
      from snn_sparse.training import tensorboard  # pylint: disable=g-import-not-at-top
      self._tb = (tensorboard.EventWriter(self.tensorboard_dir,
                                          purge_step=self._purge_step)
                  if tensorboard.available() else False)
    return self._tb or None


def _parse_lines(text: str, path: str, warn: bool = False
                 ) -> list[tuple[str, dict]]:
  """``(line, event)`` of each JSON line; an incomplete last line (what a
  crash leaves) is skipped, with a warning if ``warn``. Any other bad line
  raises a ``ValueError`` naming the file and the line."""
  lines = text.split("\n")
  out = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      out.append((line, json.loads(line)))
    except json.JSONDecodeError as e:
      if i < len(lines) - 1:  # only the last line may be cut short
        raise ValueError(
            f"{path}, line {i + 1}, is not JSON ({e}). Delete that line (or "
            "the file, to lose the run's log) and start again.") from None
      if warn:
        logging.warning("%s ended with an incomplete line (a run was "
                        "killed while writing it); it is dropped.", path)
  return out


def read_events(path: str, event: str | None = None) -> list[dict]:
  """The events of a ``metrics.jsonl`` file, optionally of one kind.

  The file may belong to a run that is still going, or that was killed while
  writing: an incomplete last line is skipped.
  """
  with open(path) as f:
    rows = [e for _, e in _parse_lines(f.read(), path)]
  return [r for r in rows if event is None or r["event"] == event]


def _duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
  """The progress of a run: a live bar on a terminal, else one line a report.

  Call :meth:`update` at each report point (each log interval) with the step
  and the mean training metrics; it returns the throughput since the last
  call (samples/s). When ``stream`` (default stderr) is a terminal, or
  ``bar=True``, one tqdm bar shows the iteration, the step, samples/s, the
  elapsed time and ETA, and the loss and accuracy; it closes itself at the
  last step. Otherwise (a log file, CI, a batch job) each report prints one
  line::

    [iteration 3] step 300/1000 (30%) | 6012.1 samples/s | ETA 0:00:09 | ...

  Nothing is printed unless ``enabled`` (only the first process reports).
  """

  def __init__(self, total_steps: int, start_step: int, batch_size: int,
               enabled: bool = True, stream=None, bar: bool | None = None):
    self.total, self.batch_size, self.enabled = total_steps, batch_size, enabled
    self.stream = stream or sys.stderr
    self._last_step, self._last_time = start_step, time.perf_counter()
    if bar is None:
      bar = enabled and _is_terminal(self.stream)
    self._bar = None
    if enabled and bar and start_step < total_steps:
      import tqdm  # pylint: disable=g-import-not-at-top
      self._bar = tqdm.tqdm(
          total=total_steps, initial=start_step, file=self.stream,
          desc="resuming" if start_step else "training",
          ncols=_width(self.stream),
          bar_format=("{desc} {percentage:3.0f}%|{bar}| step {n_fmt}/"
                      "{total_fmt} [{elapsed}<{remaining}{postfix}]"))
    elif enabled and start_step:
      print(f"Resuming at step {start_step}/{total_steps}.", file=self.stream,
            flush=True)

  def restart(self, step: int) -> None:
    """Restarts the clock at ``step`` (after a pause such as evaluation)."""
    self._last_step, self._last_time = step, time.perf_counter()

  def update(self, step: int, prefix: str = "",
             values: Mapping | None = None) -> float:
    """Reports ``step`` with ``values`` (loss, accuracy, ...); returns the
    samples/s since the last report. ``prefix``: e.g. ``"[iteration 3] "``."""
    now = time.perf_counter()
    rate = ((step - self._last_step) * self.batch_size /
            max(now - self._last_time, 1e-9))
    eta = (self.total - step) * self.batch_size / rate if rate else math.inf
    self._last_step, self._last_time = step, now
    if self._bar is not None:
      shown = {k: v for k, v in (values or {}).items()
               if k in ("loss", "accuracy")}
      self._bar.set_description_str(prefix.strip(" []") or "training",
                                    refresh=False)
      self._bar.set_postfix_str(", ".join(
          [f"{rate:.0f} samples/s"] +
          [f"{k} {v:.4g}" for k, v in shown.items()]), refresh=False)
      self._bar.update(step - self._bar.n)
      if step >= self.total:
        self.close()
    elif self.enabled:
      extra = "".join(f" | {k} {v:.4g}" for k, v in (values or {}).items())
      print(f"{prefix}step {step}/{self.total} "
            f"({100.0 * step / self.total:.0f}%) | {rate:.1f} samples/s | "
            f"ETA {_duration(eta)}{extra}", file=self.stream, flush=True)
    return rate

  def close(self) -> None:
    """Closes the bar (leaving its last state on screen); idempotent."""
    if self._bar is not None:
      self._bar.close()
      self._bar = None


def _is_terminal(stream) -> bool:
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


def _width(stream) -> int:
  """``$COLUMNS``, else the width of ``stream``'s terminal, else 100."""
  try:
    columns = int(os.environ.get("COLUMNS", "0"))
  except ValueError:
    columns = 0
  if not columns:
    try:
      columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
      columns = 0
  return columns or 100


def describe_config(config, overrides: Mapping | None = None) -> str:
  """One line that says what a run trains: data, model, algorithm, length.

  ``config``: a run's config (``experiments/configs/default.py``);
  ``overrides``: the command line's ``{field: value}``, appended as
  ``field=value``.
  """
  s = config.sparsity
  algorithm = s.algorithm
  if algorithm in ("pq_dst", "sap"):
    algorithm += f" ({s.scope} scope)"
  line = (f"{config.data.name} | {config.model.name}, T={config.time_steps} "
          f"| {algorithm} | {config.num_iterations} iterations x "
          f"{config.epochs_per_iteration} epochs, batch "
          f"{config.data.batch_size} | seed {config.seed}")
  if overrides:
    line += " | " + " ".join(f"{k}={v}" for k, v in overrides.items())
  return line


def table(rows: Iterable[Mapping], columns: list[tuple[str, str, str]]) -> str:
  """A plain-text table; ``columns`` are ``(header, key, format)``."""
  rows = list(rows)
  cells = [[h for h, _, _ in columns]] + [
      [format(r[k], f) if r.get(k) is not None else "-" for _, k, f in columns]
      for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
  return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths))
                   for line in cells)
