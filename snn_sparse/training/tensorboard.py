"""TensorBoard event files of a run (with the ``[tb]`` extra: tensorboardX).

:class:`EventWriter` turns the events of ``metrics.jsonl`` into scalars, all
at the global training step:

- ``train/loss``, ``train/accuracy``, ``train/learning_rate``,
  ``train/samples_per_s``: each log interval;
- ``eval/val_accuracy``, ``eval/test_accuracy``, ``eval/connectivity``,
  ``eval/sops``, ``eval/energy_uj``, ...: each iteration, and its per-layer
  values as ``density/<layer>`` (connectivity), ``pq_index/<layer>`` and
  ``eval/<quantity>/<layer>`` (firing rates, SOPs, ...);
- ``rewire/...`` and ``iteration_end/...``: each rewiring event and net
  prune (per-layer PQ index, ratio, pruned, grown, density).

Events are written synchronously, one record per event, so the file is
complete whenever :meth:`EventWriter.write` returns. A resumed run starts a
new file that purges the steps after the restored one, as ``metrics.jsonl``
drops them.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import time
from typing import Any, Mapping

# Keys that identify an event rather than measure something.
_SKIP = frozenset({"event", "step", "iteration", "epoch", "mask_fingerprint",
                   "best"})
# Per-layer dicts of an eval row with a top-level tag of their own.
_RENAME = {"connectivity_per_layer": "density",
           "pq_index_per_layer": "pq_index"}


def available() -> bool:
  """Whether tensorboardX is installed (the ``[tb]`` extra)."""
  return importlib.util.find_spec("tensorboardX") is not None


def scalars(event: str, values: Mapping[str, Any]) -> dict[str, float]:
  """The TensorBoard scalars ``{tag: value}`` of one ``metrics.jsonl`` event.

  Numbers (not booleans) become ``<event>/<key>``; nested dicts become
  ``<event>/<key>/<sub key>``, except an eval row's per-layer connectivity
  and PQ index, which become ``density/<layer>`` and ``pq_index/<layer>``.
  ``None`` values and identifying keys (``step``, ``iteration``, ...) are
  left out.
  """
  out = {}

  def add(tag, value):
    if isinstance(value, Mapping):
      for k, v in value.items():
        add(f"{tag}/{k}", v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      out[tag] = float(value)
    elif hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
      out[tag] = float(value)  # numpy / jax scalars

  for key, value in values.items():
    if key in _SKIP:
      continue
    if event == "eval" and key in _RENAME:
      add(_RENAME[key], value)
    else:
      add(f"{event}/{key}", value)
  return out


class EventWriter:
  """Appends scalars to a new event file under ``logdir``.

  Args:
    logdir: the directory (created if needed).
    purge_step: when set, TensorBoard hides the events of earlier files at
      this step and after (a resumed run rewrites them).
  """

  def __init__(self, logdir: str, purge_step: int | None = None):
    # pylint: disable=g-import-not-at-top
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto import event_pb2, summary_pb2
    self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
    os.makedirs(logdir, exist_ok=True)
    self._writer = EventsWriter(os.path.join(logdir, "events"),
                                f".{os.getpid()}.{time.time_ns()}")
    if purge_step:
      self._writer.write_event(event_pb2.Event(
          wall_time=time.time(), step=int(purge_step),
          session_log=event_pb2.SessionLog(
              status=event_pb2.SessionLog.START)))
    self._writer.flush()

  def write(self, event: str, step: int, values: Mapping[str, Any]) -> None:
    """Writes the scalars of one event (see :func:`scalars`) at ``step``."""
    tags = scalars(event, values)
    if not tags:
      return
    summary = self._summary_pb2.Summary(value=[
        self._summary_pb2.Summary.Value(tag=t, simple_value=v)
        for t, v in tags.items()])
    self._writer.write_event(self._event_pb2.Event(
        wall_time=time.time(), step=int(step), summary=summary))
    self._writer.flush()

  def close(self) -> None:
    """Closes the file; later writes need a new writer."""
    self._writer.close()


def read_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
  """Every scalar in the event files of ``logdir``: ``{tag: [(step, value)]}``.

  Files are read in name order and each tag's points in file order; purges
  are not applied.
  """
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out: dict[str, list[tuple[int, float]]] = {}
  for name in sorted(os.listdir(logdir)):
    if ".tfevents." not in name:
      continue
    with open(os.path.join(logdir, name), "rb") as f:
      data = f.read()
    offset = 0
    while offset + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      record = data[offset + 12:offset + 12 + length]
      offset += 12 + length + 4  # length, its CRC, data, the data's CRC
      event = event_pb2.Event.FromString(record)
      for value in event.summary.value:
        out.setdefault(value.tag, []).append((event.step, value.simple_value))
  return out
