"""Readers of the official event-camera file formats, in vectorised numpy.

Every reader returns a structured array of events with dtype
:data:`EVENT_DTYPE`: fields ``t`` (int64, microseconds), ``x`` and ``y``
(int16, pixel column and row) and ``p`` (int8, polarity 0 or 1), in file
order (time order for a valid recording).

* :func:`read_aedat2`: AEDAT 2.0 (jAER), used by CIFAR10-DVS;
* :func:`read_aedat3`: AEDAT 3.1, used by DVS128 Gesture;
* :func:`read_nmnist`: the N-MNIST binary format;
* :func:`read_gesture_labels`: DVS128 Gesture's ``*_labels.csv`` segments.

Each ``read_*`` takes a path; the ``decode_*`` of the binary formats take
the file's bytes and a name for error messages (for example a member of a
zip archive).
A corrupt or truncated file raises :class:`EventFileError`, whose message
names the file and the byte offset of the problem. Readers check every size
before they slice, so they never read out of bounds and always terminate.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

#: The structured dtype of an event array.
EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16),
                        ("p", np.int8)])

#: The structured dtype of DVS128 Gesture label segments.
SEGMENT_DTYPE = np.dtype([("label", np.int64), ("start", np.int64),
                          ("end", np.int64)])

_AEDAT3_PACKET_HEADER = np.dtype([
    ("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
    ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"),
    ("valid", "<i4")])
_AEDAT3_POLARITY = 1
_AEDAT3_END_HEADER = b"#!END-HEADER"


class EventFileError(ValueError):
  """An event file is corrupt or truncated; names the file and byte offset."""

  def __init__(self, name: str, offset: int, problem: str):
    super().__init__(f"{name}: {problem} at byte offset {offset}. The file is "
                     "corrupt or truncated; download it again.")
    self.name = name
    self.offset = offset


def make_events(t, x, y, p) -> np.ndarray:
  """Packs equal-length arrays into an :data:`EVENT_DTYPE` array ``[N]``."""
  t = np.asarray(t)
  events = np.empty(t.shape[0], EVENT_DTYPE)
  events["t"], events["x"], events["y"], events["p"] = t, x, y, p
  return events


def _read_bytes(path: str | os.PathLike) -> bytes:
  return pathlib.Path(path).read_bytes()


def _skip_header_lines(raw: bytes, name: str, *, stop: bytes | None = None
                       ) -> tuple[int, bool]:
  """Skips the ``#`` text lines at the start of ``raw``.

  Returns:
    ``(offset of the first byte after the header, whether a line equal to
    stop was seen)``; with ``stop`` the header ends after that line.
  """
  pos = 0
  while pos < len(raw) and raw[pos] == ord("#"):
    newline = raw.find(b"\n", pos)
    if newline < 0:
      raise EventFileError(name, pos, "header line without a line end")
    line = raw[pos:newline].rstrip(b"\r")
    pos = newline + 1
    if stop is not None and line == stop:
      return pos, True
  return pos, False


# ----------------------------------------------------------------------------
# AEDAT 2.0 (jAER): CIFAR10-DVS.
# ----------------------------------------------------------------------------


def decode_aedat2(raw: bytes, name: str = "<bytes>") -> np.ndarray:
  """Decodes an AEDAT 2.0 file with the DVS128 address layout.

  The file is ``#`` header lines (the first is ``#!AER-DAT2.0``), then
  big-endian uint32 pairs ``(address, timestamp in µs)``. The address gives
  ``x = bits 1..7``, ``y = bits 8..14`` and ``p = bit 0``, with no flips
  (the CIFAR10-DVS builder applies that dataset's orientation).

  Args:
    raw: the file's bytes.
    name: the file name used in error messages.

  Returns:
    Events ``[N]`` of :data:`EVENT_DTYPE` in file order.

  Raises:
    EventFileError: no ``#!AER-DAT2`` header, or a truncated event.
  """
  if not raw.startswith(b"#!AER-DAT2"):
    raise EventFileError(name, 0, "no '#!AER-DAT2.0' header line (not an "
                         "AEDAT 2.0 file)")
  start, _ = _skip_header_lines(raw, name)
  body = len(raw) - start
  if body % 8:
    end = start + body - body % 8
    raise EventFileError(name, end, f"truncated event: {body % 8} trailing "
                         "bytes, but events are 8 bytes")
  words = np.frombuffer(raw, ">u4", body // 4, offset=start).reshape(-1, 2)
  address = words[:, 0]
  return make_events(words[:, 1].astype(np.int64), (address >> 1) & 0x7F,
                     (address >> 8) & 0x7F, address & 1)


def read_aedat2(path: str | os.PathLike) -> np.ndarray:
  """Reads an AEDAT 2.0 file (see :func:`decode_aedat2`): events ``[N]``."""
  return decode_aedat2(_read_bytes(path), str(path))


# ----------------------------------------------------------------------------
# AEDAT 3.1: DVS128 Gesture.
# ----------------------------------------------------------------------------


def decode_aedat3(raw: bytes, name: str = "<bytes>") -> np.ndarray:
  """Decodes the polarity events of an AEDAT 3.1 file.

  Layout: ``#`` text header lines (``\\r\\n`` line ends) up to and including
  ``#!END-HEADER``; then packets, each a 28-byte little-endian header
  (eventType, eventSource: int16; eventSize, eventTSOffset, eventTSOverflow,
  eventCapacity, eventNumber, eventValid: int32) followed by
  ``eventCapacity * eventSize`` bytes of events. Packets of type 1
  (polarity) hold 8-byte events ``(uint32 data, int32 timestamp)``: the
  valid mark is bit 0, ``p`` bit 1, ``y`` bits 2..16 and ``x`` bits 17..31.
  Invalid events and packets of other types are skipped. Timestamps are 31
  bits wide; ``t = eventTSOverflow << 31 | timestamp``.

  Args:
    raw: the file's bytes.
    name: the file name used in error messages.

  Returns:
    Events ``[N]`` of :data:`EVENT_DTYPE` in file order.

  Raises:
    EventFileError: a bad header, an impossible packet header, or a packet
      that runs past the end of the file.
  """
  if not raw.startswith(b"#!AER-DAT3"):
    raise EventFileError(name, 0, "no '#!AER-DAT3.1' header line (not an "
                         "AEDAT 3.1 file)")
  pos, ended = _skip_header_lines(raw, name, stop=_AEDAT3_END_HEADER)
  if not ended:
    raise EventFileError(name, pos, "no '#!END-HEADER' line ends the header")
  head_size = _AEDAT3_PACKET_HEADER.itemsize
  parts = []
  while pos < len(raw):
    if len(raw) - pos < head_size:
      raise EventFileError(name, pos, f"truncated packet header: "
                           f"{len(raw) - pos} of {head_size} bytes")
    head = np.frombuffer(raw, _AEDAT3_PACKET_HEADER, 1, offset=pos)[0]
    size, capacity, number = (int(head["size"]), int(head["capacity"]),
                              int(head["number"]))
    overflow = int(head["ts_overflow"])
    if size <= 0 or overflow < 0 or not 0 <= number <= capacity:
      raise EventFileError(
          name, pos, f"impossible packet header (eventSize {size}, "
          f"eventTSOverflow {overflow}, eventCapacity {capacity}, "
          f"eventNumber {number})")
    body = pos + head_size
    if capacity * size > len(raw) - body:
      raise EventFileError(
          name, pos, f"truncated packet: {capacity} events of {size} bytes "
          f"announced, {len(raw) - body} bytes left")
    if int(head["type"]) == _AEDAT3_POLARITY:
      if size != 8:
        raise EventFileError(name, pos, f"polarity packet with eventSize "
                             f"{size}, expected 8")
      words = np.frombuffer(raw, "<u4", 2 * number, offset=body)
      data, ts = words[0::2], words[1::2].astype(np.int64) & 0x7FFFFFFF
      valid = (data & 1).astype(bool)
      data = data[valid]
      t = (overflow << 31) | ts[valid]
      parts.append(make_events(t, (data >> 17) & 0x7FFF,
                               (data >> 2) & 0x7FFF, (data >> 1) & 1))
    pos = body + capacity * size
  if not parts:
    return np.zeros(0, EVENT_DTYPE)
  return np.concatenate(parts)


def read_aedat3(path: str | os.PathLike) -> np.ndarray:
  """Reads an AEDAT 3.1 file (see :func:`decode_aedat3`): events ``[N]``."""
  return decode_aedat3(_read_bytes(path), str(path))


def read_gesture_labels(path: str | os.PathLike) -> np.ndarray:
  """Reads a DVS128 Gesture ``userXX_<lighting>_labels.csv``.

  The file is a header line ``class,startTime_usec,endTime_usec`` then one
  line per gesture. Labels 1..11 in the file become 0..10. A segment covers
  the events with ``start <= t < end``.

  Returns:
    ``[S]`` of :data:`SEGMENT_DTYPE` (``label``, ``start``, ``end``), in file
    order.

  Raises:
    EventFileError: a malformed line, a label outside 1..11, or end < start
      (the offset is that of the line).
  """
  raw = _read_bytes(path)
  rows = []
  offset = 0
  for line in raw.splitlines(keepends=True):
    text = line.strip()
    here, offset = offset, offset + len(line)
    if not text or text.startswith(b"class"):
      continue
    fields = text.split(b",")
    try:
      label, start, end = (int(f) for f in fields)
    except ValueError:
      raise EventFileError(str(path), here, f"malformed line {text!r}, "
                           "expected 'class,startTime_usec,endTime_usec'"
                           ) from None
    if not 1 <= label <= 11 or end < start:
      raise EventFileError(str(path), here, f"bad segment {text!r} (class "
                           "must be 1..11 and end >= start)")
    rows.append((label - 1, start, end))
  return np.array(rows, SEGMENT_DTYPE)


def segment(events: np.ndarray, start: int, end: int) -> np.ndarray:
  """The events ``[M]`` with ``start <= t < end`` (any order of ``events``)."""
  t = events["t"]
  return events[(t >= start) & (t < end)]


# ----------------------------------------------------------------------------
# N-MNIST.
# ----------------------------------------------------------------------------

#: The N-MNIST sensor, ``(width, height)``.
NMNIST_SENSOR = (34, 34)
_NMNIST_OVERFLOW_Y = 240
_NMNIST_OVERFLOW_US = 1 << 13


def decode_nmnist(raw: bytes, name: str = "<bytes>",
                  sensor_size: tuple[int, int] = NMNIST_SENSOR) -> np.ndarray:
  """Decodes an N-MNIST (and N-Caltech101) binary file.

  The file is 5-byte records (40 bits): byte 0 is ``x``, byte 1 is ``y``,
  bit 7 of byte 2 is ``p`` and the remaining 23 bits (byte 2 bits 6..0,
  byte 3, byte 4, big-endian) are the timestamp in µs. A record with
  ``y == 240`` is a timestamp-overflow marker, as in the dataset's own
  reader: it is dropped and adds 8192 µs to every later timestamp.

  Args:
    raw: the file's bytes.
    name: the file name used in error messages.
    sensor_size: ``(width, height)``; events outside it are corruption.

  Returns:
    Events ``[N]`` of :data:`EVENT_DTYPE` in file order.

  Raises:
    EventFileError: a partial record, or an event outside the sensor.
  """
  if len(raw) % 5:
    end = len(raw) - len(raw) % 5
    raise EventFileError(name, end, f"truncated record: {len(raw) % 5} "
                         "trailing bytes, but records are 5 bytes")
  rec = np.frombuffer(raw, np.uint8).reshape(-1, 5)
  x, y = rec[:, 0].astype(np.int16), rec[:, 1].astype(np.int16)
  t = ((rec[:, 2].astype(np.int64) & 0x7F) << 16 |
       rec[:, 3].astype(np.int64) << 8 | rec[:, 4])
  overflow = y == _NMNIST_OVERFLOW_Y
  if overflow.any():
    t = t + _NMNIST_OVERFLOW_US * np.cumsum(overflow)
  keep = ~overflow
  bad = keep & ((x >= sensor_size[0]) | (y >= sensor_size[1]))
  if bad.any():
    i = int(np.argmax(bad))
    raise EventFileError(name, 5 * i, f"event (x={x[i]}, y={y[i]}) outside "
                         f"the {sensor_size[0]}x{sensor_size[1]} sensor")
  return make_events(t[keep], x[keep], y[keep], rec[keep, 2] >> 7)


def read_nmnist(path: str | os.PathLike,
                sensor_size: tuple[int, int] = NMNIST_SENSOR) -> np.ndarray:
  """Reads an N-MNIST ``.bin`` file (see :func:`decode_nmnist`)."""
  return decode_nmnist(_read_bytes(path), str(path), sensor_size)
