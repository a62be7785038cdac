"""Tests of event data: readers, framing, event builders, augmentation."""

from __future__ import annotations

import json
import os
import pathlib
import re
import zipfile

import numpy as np
import pytest

from experiments.configs import digits_events as digits_events_config
from snn_sparse import data
from snn_sparse.training import train
from snn_sparse.data import augment as augment_lib
from snn_sparse.data import events, framing, pipeline, saccades
from snn_sparse.data.builders import cifar10_dvs, dvs_gesture

# ----------------------------------------------------------------------------
# Writers of the official formats (tiny files for the tests).
# ----------------------------------------------------------------------------


def _aedat2_bytes(address, timestamp) -> bytes:
  header = b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n"
  pairs = np.stack([np.asarray(address, np.int64),
                    np.asarray(timestamp, np.int64)], 1).reshape(-1, 2)
  return header + pairs.astype(">u4").tobytes()


def _dvs128_address(x, y, p):
  return (np.asarray(y) << 8) | (np.asarray(x) << 1) | np.asarray(p)


_AEDAT3_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                  b"#!END-HEADER\r\n")


def _aedat3_packet(etype, payload: bytes, size, number, capacity=None,
                   overflow=0) -> bytes:
  capacity = number if capacity is None else capacity
  head = np.array([(etype, 1, size, 4, overflow, capacity, number, number)],
                  [("a", "<i2"), ("b", "<i2"), ("c", "<i4"), ("d", "<i4"),
                   ("e", "<i4"), ("f", "<i4"), ("g", "<i4"), ("h", "<i4")])
  return head.tobytes() + payload


def _polarity_payload(x, y, p, t, valid) -> bytes:
  word = ((np.asarray(x, np.uint32) << 17) | (np.asarray(y, np.uint32) << 2)
          | (np.asarray(p, np.uint32) << 1) | np.asarray(valid, np.uint32))
  return np.stack([word, np.asarray(t, np.uint32)], 1).astype("<u4").tobytes()


def _nmnist_bytes(x, y, p, t) -> bytes:
  t = np.asarray(t, np.int64)
  rec = np.stack([np.asarray(x), np.asarray(y),
                  (np.asarray(p) << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF,
                  t & 0xFF], 1)
  return rec.astype(np.uint8).tobytes()


def _events(t, x, y, p):
  return events.make_events(np.asarray(t), x, y, p)


def _assert_events(got, t, x, y, p):
  assert got.dtype == events.EVENT_DTYPE
  np.testing.assert_array_equal(got["t"], t)
  np.testing.assert_array_equal(got["x"], x)
  np.testing.assert_array_equal(got["y"], y)
  np.testing.assert_array_equal(got["p"], p)


# ----------------------------------------------------------------------------
# Static info.
# ----------------------------------------------------------------------------


def test_event_dataset_info():
  info = data.dataset_info("cifar10_dvs")
  assert info.example_shape == (10, 48, 48, 2) and info.feature == "frames"
  assert (info.num_train, info.num_test, info.flip, info.roll) == (
      9000, 1000, True, 5)
  assert data.dataset_info("dvs_gesture").example_shape == (16, 32, 32, 2)
  assert data.dataset_info("nmnist").example_shape == (10, 34, 34, 2)
  assert data.dataset_info("digits_events").example_shape == (6, 16, 16, 2)
  assert data.dataset_info("cifar10").example_shape == (32, 32, 3)
  assert data.steps_per_epoch("cifar10_dvs", 64) == 140
  assert data.steps_per_epoch("dvs_gesture", 16) == 73


# ----------------------------------------------------------------------------
# Readers.
# ----------------------------------------------------------------------------


def test_aedat2_round_trip(tmp_path):
  x, y, p = [0, 127, 5, 64], [0, 3, 127, 9], [1, 0, 1, 0]
  t = [10, 20, 4_000_000_000, 4_000_000_001]
  path = tmp_path / "rec.aedat"
  path.write_bytes(_aedat2_bytes(_dvs128_address(x, y, p), t))
  _assert_events(events.read_aedat2(path), t, x, y, p)
  # Bits above 14 are ignored; the CIFAR10-DVS orientation.
  path.write_bytes(_aedat2_bytes(_dvs128_address(x, y, p) | (1 << 20), t))
  got = cifar10_dvs.oriented(events.read_aedat2(path))
  _assert_events(got, t, [127, 124, 0, 118], [127, 0, 122, 63],
                 [0, 1, 0, 1])


def test_aedat3_round_trip(tmp_path):
  first = _polarity_payload(x=[1, 2, 3], y=[4, 5, 6], p=[1, 0, 1],
                            t=[100, 200, 300], valid=[1, 0, 1])
  imu = bytes(range(36)) * 2  # two 36-byte events of another type
  second = _polarity_payload(x=[127, 0], y=[0, 127], p=[0, 1],
                             t=[5, (1 << 31) - 1], valid=[1, 1])
  raw = (_AEDAT3_HEADER + _aedat3_packet(1, first, 8, 3)
         + _aedat3_packet(2, imu, 36, 2)
         + _aedat3_packet(1, second, 8, 2, overflow=3)
         + _aedat3_packet(1, b"", 8, 0))
  path = tmp_path / "user01_led.aedat"
  path.write_bytes(raw)
  _assert_events(events.read_aedat3(path),
                 [100, 300, (3 << 31) | 5, (3 << 31) | ((1 << 31) - 1)],
                 [1, 3, 127, 0], [4, 6, 0, 127], [1, 1, 0, 1])


def test_nmnist_round_trip(tmp_path):
  x, y, p = [0, 33, 7, 20], [0, 12, 33, 1], [1, 0, 1, 0]
  t = [0, 1, 65_536 + 258, (1 << 23) - 1]
  path = tmp_path / "00002.bin"
  path.write_bytes(_nmnist_bytes(x, y, p, t))
  _assert_events(events.read_nmnist(path), t, x, y, p)
  # A y == 240 record marks a timestamp overflow: +8192 us from there on.
  path.write_bytes(_nmnist_bytes([1, 0, 2], [1, 240, 2], [0, 0, 1],
                                 [50, 0, 40]))
  _assert_events(events.read_nmnist(path), [50, 40 + 8192], [1, 2], [1, 2],
                 [0, 1])


def test_gesture_labels(tmp_path):
  path = tmp_path / "user01_led_labels.csv"
  path.write_text("class,startTime_usec,endTime_usec\r\n1,100,200\r\n"
                  "11,150,400\r\n\r\n")
  seg = events.read_gesture_labels(path)
  np.testing.assert_array_equal(seg["label"], [0, 10])
  np.testing.assert_array_equal(seg["start"], [100, 150])
  np.testing.assert_array_equal(seg["end"], [200, 400])
  ev = _events([99, 100, 199, 200], [0] * 4, [0] * 4, [0] * 4)
  np.testing.assert_array_equal(events.segment(ev, 100, 200)["t"], [100, 199])
  path.write_text("class,startTime_usec,endTime_usec\n1,100,200\n12,1,2\n")
  with pytest.raises(events.EventFileError,
                     match=re.escape(f"{path}: bad segment") + ".*at byte "
                     "offset 44"):
    events.read_gesture_labels(path)


def _expect_error(path, offset, what):
  return pytest.raises(events.EventFileError, match=re.escape(str(path))
                       + f": {what}.* at byte offset {offset}\\.")


def test_truncated_and_corrupt_files(tmp_path):
  path = tmp_path / "bad.aedat"
  good2 = _aedat2_bytes(_dvs128_address([1, 2], [3, 4], [0, 1]), [5, 6])
  header2 = len(good2) - 16
  path.write_bytes(good2[:-3])
  with _expect_error(path, header2 + 8, "truncated event"):
    events.read_aedat2(path)
  path.write_bytes(good2[header2:])  # no header at all
  with _expect_error(path, 0, "no '#!AER-DAT2.0' header"):
    events.read_aedat2(path)
  path.write_bytes(b"#!AER-DAT2.0")  # a header line without its end
  with _expect_error(path, 0, "header line without a line end"):
    events.read_aedat2(path)

  packet = _aedat3_packet(1, _polarity_payload([1], [1], [1], [1], [1]), 8, 1)
  h = len(_AEDAT3_HEADER)
  for raw, offset, what in [
      (_AEDAT3_HEADER + packet[:20], h, "truncated packet header"),
      (_AEDAT3_HEADER + packet + packet[:-1], h + 36, "truncated packet"),
      (_AEDAT3_HEADER + _aedat3_packet(1, b"", 8, 5, capacity=2), h,
       "impossible packet header"),
      (_AEDAT3_HEADER + _aedat3_packet(1, b"", -8, 0), h,
       "impossible packet header"),
      (_AEDAT3_HEADER + _aedat3_packet(1, bytes(12), 12, 1), h,
       "polarity packet with eventSize 12"),
      (_AEDAT3_HEADER.replace(b"#!END-HEADER\r\n", b"") + packet,
       h - 14, "no '#!END-HEADER'"),
      (good2, 0, "no '#!AER-DAT3.1' header"),
  ]:
    path.write_bytes(raw)
    with _expect_error(path, offset, what):
      events.read_aedat3(path)
  # A huge announced packet is refused without reading past the end.
  path.write_bytes(_AEDAT3_HEADER + _aedat3_packet(1, b"", 8, 2**30))
  with _expect_error(path, h, "truncated packet"):
    events.read_aedat3(path)

  good = _nmnist_bytes([1, 2], [3, 4], [0, 1], [5, 6])
  path.write_bytes(good + good[:2])
  with _expect_error(path, 10, "truncated record"):
    events.read_nmnist(path)
  path.write_bytes(good + _nmnist_bytes([34], [0], [0], [9]))
  with _expect_error(path, 10, r"event \(x=34, y=0\) outside the 34x34"):
    events.read_nmnist(path)


# ----------------------------------------------------------------------------
# Framing.
# ----------------------------------------------------------------------------


def test_frames_by_number_by_hand():
  # N = 7 events, T = 3: di = 2, slices [0, 2), [2, 4), [4, 7).
  ev = _events(t=[0, 1, 2, 3, 4, 5, 100], x=[0, 1, 0, 2, 2, 2, 0],
               y=[0, 0, 1, 1, 0, 0, 1], p=[1, 0, 1, 1, 0, 0, 1])
  frames = framing.events_to_frames(ev, (3, 2), 3, "number", dtype=np.int64)
  want = np.zeros((3, 2, 3, 2), np.int64)  # [T, H=2, W=3, 2]
  want[0, 0, 0, 1] = 1
  want[0, 0, 1, 0] = 1
  want[1, 1, 0, 1] = 1
  want[1, 1, 2, 1] = 1
  want[2, 0, 2, 0] = 3 - 1  # events 4 and 5
  want[2, 1, 0, 1] = 1      # the remainder goes to the last frame
  np.testing.assert_array_equal(frames, want)
  np.testing.assert_array_equal(
      framing.frame_index(np.arange(7), 3, "number"), [0, 0, 1, 1, 2, 2, 2])
  # Fewer events than frames: everything in the last frame.
  np.testing.assert_array_equal(
      framing.frame_index(np.arange(2), 3, "number"), [2, 2])


def test_frames_by_time_by_hand():
  # t0 = 10, t[-1] = 33: dt = 23 // 3 = 7; windows [10, 17), [17, 24),
  # [24, 33] (the last one runs to the end, inclusive).
  t = np.array([10, 16, 17, 23, 24, 30, 33])
  np.testing.assert_array_equal(framing.frame_index(t, 3, "time"),
                                [0, 0, 1, 1, 2, 2, 2])
  ev = _events(t, x=[1, 1, 0, 0, 1, 1, 1], y=[0] * 7, p=[0, 1, 0, 0, 1, 1, 1])
  frames = framing.events_to_frames(ev, (2, 1), 3, "time")
  assert frames.dtype == np.float32 and frames.shape == (3, 1, 2, 2)
  np.testing.assert_array_equal(frames[:, 0], [[[0, 0], [1, 1]],
                                               [[2, 0], [0, 0]],
                                               [[0, 0], [0, 3]]])
  # Span shorter than T: dt = 0, all events in the last frame.
  np.testing.assert_array_equal(framing.frame_index(np.array([5, 6]), 3,
                                                    "time"), [2, 2])
  assert framing.events_to_frames(ev[:0], (2, 1), 3).sum() == 0


def test_framing_rejects_bad_events():
  with pytest.raises(ValueError, match="outside the 2x1 sensor"):
    framing.events_to_frames(_events([0], [2], [0], [0]), (2, 1), 1)
  with pytest.raises(ValueError, match="split_by"):
    framing.frame_index(np.arange(3), 2, "count")


def test_resize_by_hand():
  # Bilinear, align_corners=False: 4 -> 2 averages pairs; 128 -> 48 samples
  # at 0.8333 and 3.5 first (PyTorch's source index (i + 0.5) * s - 0.5).
  np.testing.assert_allclose(framing.resize_matrix(4, 2),
                             [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
  m = framing.resize_matrix(128, 48)
  np.testing.assert_allclose(m[0, :2], [1 / 6, 5 / 6])
  np.testing.assert_allclose(m[1, 3:5], [0.5, 0.5])
  np.testing.assert_allclose(m.sum(1), 1.0)
  np.testing.assert_allclose(framing.resize_matrix(2, 4),
                             [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
  np.testing.assert_allclose(framing.resize_matrix(5, 3, "area"),
                             [[0.5, 0.5, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0],
                              [0, 0, 0, 0.5, 0.5]])
  frames = np.arange(2 * 4 * 4 * 2, dtype=np.float32).reshape(2, 4, 4, 2)
  small = framing.resize_frames(frames, (2, 2))
  np.testing.assert_allclose(small, frames.reshape(2, 2, 2, 2, 2, 2).mean(
      axis=(2, 4)))
  np.testing.assert_array_equal(framing.sum_pool_frames(frames, 2),
                                frames.reshape(2, 2, 2, 2, 2, 2).sum((2, 4)))


def test_saccade_emulation_is_deterministic_and_edge_driven():
  image = np.zeros((8, 8))
  image[2:6, 3:5] = 1.0
  a = saccades.saccade_events(image, index=3)
  b = saccades.saccade_events(image, index=3)
  np.testing.assert_array_equal(a, b)
  assert len(a) > 20 and set(np.unique(a["p"])) == {0, 1}
  assert np.all(np.diff(a["t"]) >= 0) and a["t"][-1] == 300_000
  assert not np.array_equal(a, saccades.saccade_events(image, index=4))
  assert len(saccades.saccade_events(np.full((8, 8), 0.5))) < len(a)


# ----------------------------------------------------------------------------
# Builders on tiny fake manual dirs.
# ----------------------------------------------------------------------------


def _read_split(name, data_dir, split):
  source = data.data_sources(name, data_dir=data_dir)[split]
  records = source.__getitems__(list(range(len(source))))
  return (np.stack([r["frames"] for r in records]),
          np.array([r["label"] for r in records]))


def test_cifar10_dvs_builder(tmp_path):
  rng = np.random.default_rng(0)
  manual = tmp_path / "manual"
  truth = {}
  for label, name in enumerate(cifar10_dvs.CLASSES):
    files = {}
    for number in (0, 10, 2):  # numeric order 0, 2, 10 (not lexicographic)
      n = 30 + number
      raw = _aedat2_bytes(_dvs128_address(rng.integers(0, 128, n),
                                          rng.integers(0, 128, n),
                                          rng.integers(0, 2, n)),
                          np.sort(rng.integers(0, 10**6, n)))
      files[f"cifar10_{name}_{number}.aedat"] = raw
      truth[label, number] = cifar10_dvs.frames_of(cifar10_dvs.oriented(
          events.decode_aedat2(raw)))
    if label == 1:  # One class as the official zip archive.
      manual.mkdir(exist_ok=True)
      with zipfile.ZipFile(manual / f"{name}.zip", "w") as z:
        for fname, raw in files.items():
          z.writestr(f"{name}/{fname}", raw)
    else:
      (manual / name).mkdir(parents=True)
      for fname, raw in files.items():
        (manual / name / fname).write_bytes(raw)
  data.prepare("cifar10_dvs", data_dir=tmp_path / "data", manual_dir=manual)
  # 3 recordings per class: 9 * 3 // 10 = 2 train (numbers 0, 2), 1 test (10).
  for split, numbers in (("train", (0, 2)), ("test", (10,))):
    frames, labels = _read_split("cifar10_dvs", tmp_path / "data", split)
    assert frames.shape == (10 * len(numbers), 10, 48, 48, 2)
    assert frames.dtype == np.float16
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10),
                                                    len(numbers)))
    want = np.stack([truth[c, k] for c in range(10) for k in numbers])
    np.testing.assert_allclose(frames, want, rtol=1e-3, atol=1e-3)
  batch = next(data.eval_batches("cifar10_dvs", batch_size=4,
                                 data_dir=tmp_path / "data"))
  assert batch["input"].shape == (4, 10, 48, 48, 2)
  assert batch["input"].dtype == np.float32
  np.testing.assert_array_equal(batch["mask"], [1, 1, 1, 1])


def test_dvs_gesture_builder(tmp_path):
  rng = np.random.default_rng(1)
  root = tmp_path / "manual" / "DvsGesture"
  root.mkdir(parents=True)
  (root / "trials_to_train.txt").write_text("user01_led.aedat\n\n")
  (root / "trials_to_test.txt").write_text("user02_natural.aedat\n")
  truth = {}
  for user, segments in (("user01_led", [(3, 0, 5000), (11, 4000, 9000),
                                         (1, 9000, 9500)]),
                         ("user02_natural", [(7, 100, 700)])):
    n = 400
    t = np.sort(rng.integers(0, 10_000, n))
    x, y, p = (rng.integers(0, 128, n), rng.integers(0, 128, n),
               rng.integers(0, 2, n))
    payload = _polarity_payload(x, y, p, t, np.ones(n, int))
    (root / f"{user}.aedat").write_bytes(
        _AEDAT3_HEADER + _aedat3_packet(1, payload, 8, n))
    (root / f"{user}_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\r\n"
        + "".join(f"{c},{s},{e}\r\n" for c, s, e in segments))
    ev = _events(t, x, y, p)
    truth[user] = [(c - 1, framing.sum_pool_frames(framing.events_to_frames(
        events.segment(ev, s, e), (128, 128), 16, dtype=np.int64), 4))
                   for c, s, e in segments]
  data.prepare("dvs_gesture", data_dir=tmp_path / "data",
               manual_dir=tmp_path / "manual")
  for split, user in (("train", "user01_led"), ("test", "user02_natural")):
    frames, labels = _read_split("dvs_gesture", tmp_path / "data", split)
    assert frames.dtype == np.uint16 and frames.shape[1:] == (16, 32, 32, 2)
    np.testing.assert_array_equal(labels, [c for c, _ in truth[user]])
    np.testing.assert_array_equal(frames, [f for _, f in truth[user]])


def test_nmnist_builder(tmp_path):
  rng = np.random.default_rng(2)
  manual = tmp_path / "manual"
  truth = {"train": [], "test": []}
  test_zip = {}
  for split, folder, files in (("train", "Train", [(3, "00001"), (0, "00007"),
                                                   (0, "00002")]),
                               ("test", "Test", [(9, "00004"), (1, "00005")])):
    for digit, stem in files:
      n = 50
      x, y, p = (rng.integers(0, 34, n), rng.integers(0, 34, n),
                 rng.integers(0, 2, n))
      t = np.sort(rng.integers(0, 300_000, n))
      raw = _nmnist_bytes(x, y, p, t)
      if split == "train":
        (manual / folder / str(digit)).mkdir(parents=True, exist_ok=True)
        (manual / folder / str(digit) / f"{stem}.bin").write_bytes(raw)
      else:
        test_zip[f"{folder}/{digit}/{stem}.bin"] = raw
      frames = framing.events_to_frames(_events(t, x, y, p), (34, 34), 10,
                                        dtype=np.int64)
      truth[split].append(((digit, stem), frames))
  with zipfile.ZipFile(manual / "Test.zip", "w") as z:
    for name, raw in test_zip.items():
      z.writestr(name, raw)
  data.prepare("nmnist", data_dir=tmp_path / "data", manual_dir=manual)
  for split in ("train", "test"):
    frames, labels = _read_split("nmnist", tmp_path / "data", split)
    want = sorted(truth[split], key=lambda item: item[0])
    assert frames.dtype == np.uint8 and frames.shape[1:] == (10, 34, 34, 2)
    np.testing.assert_array_equal(labels, [k[0] for k, _ in want])
    np.testing.assert_array_equal(frames, [f for _, f in want])


def test_missing_event_data_names_the_layout(tmp_path):
  with pytest.raises(data.DataNotFoundError,
                     match=r"(?s)CIFAR10-DVS source not found.*"
                     r"airplane/cifar10_airplane_0\.aedat.*truck\.zip"):
    data.prepare("cifar10_dvs", data_dir=tmp_path, manual_dir=tmp_path / "m")
  with pytest.raises(data.DataNotFoundError,
                     match=r"(?s)DvsGesture/trials_to_train\.txt.*"
                     r"userXX_<lighting>_labels\.csv"):
    data.prepare("dvs_gesture", data_dir=tmp_path)
  with pytest.raises(data.DataNotFoundError,
                     match=r"(?s)N-MNIST.*Train/<digit>/\*\.bin.*Test\.zip"):
    data.prepare("nmnist", data_dir=tmp_path)
  # An incomplete CIFAR10-DVS (one class) says which classes are missing.
  (tmp_path / "m" / "airplane").mkdir(parents=True)
  (tmp_path / "m" / "airplane" / "cifar10_airplane_0.aedat").write_bytes(
      _aedat2_bytes([], []))
  with pytest.raises(data.DataNotFoundError, match="missing: automobile, "):
    data.prepare("cifar10_dvs", data_dir=tmp_path, manual_dir=tmp_path / "m")
  # DVS Gesture listing a recording that is not there.
  root = tmp_path / "g" / "DvsGesture"
  root.mkdir(parents=True)
  (root / "trials_to_train.txt").write_text("user01_led.aedat\n")
  (root / "trials_to_test.txt").write_text("")
  with pytest.raises(data.DataNotFoundError, match="user01_led.aedat"):
    dvs_gesture.SnnDvsGesture.locate(tmp_path / "g", tmp_path)


# ----------------------------------------------------------------------------
# The offline event dataset: pipeline, augmentation, resume, training.
# ----------------------------------------------------------------------------


def test_digits_events_batches_and_augmentation():
  info = data.dataset_info("digits_events")
  kwargs = {"batch_size": 64, "seed": 4, "flip": True, "roll": 3}
  full = list(zip(range(25), data.train_batches("digits_events", **kwargs)))
  full = [b for _, b in full]
  for b in full:
    assert b["input"].shape == (64, info.frames, 16, 16, 2)
    assert b["input"].dtype == np.float32 and b["label"].dtype == np.int32
  # 1,437 / 64 = 22 steps per epoch: resumes inside and across epoch ends.
  for k in (1, 21, 22, 23):
    resumed = list(zip(range(25 - k), data.train_batches(
        "digits_events", start_step=k, **kwargs)))
    for (_, got), want in zip(resumed, full[k:], strict=True):
      for key in want:
        np.testing.assert_array_equal(got[key], want[key])
  # The augmentation is the documented pure function of (seed, epoch, index).
  plain = next(data.train_batches("digits_events", batch_size=64, seed=4,
                                  augment=False))
  idx = pipeline.train_batch_indices(1437, batch_size=64, seed=4, step=0)
  sy, sx = augment_lib.roll_params(4, 0, idx, 3)
  _, _, flip = augment_lib.augmentation_params(4, 0, idx, 0)
  assert np.abs(sy).max() <= 3 and np.abs(sx).max() <= 3
  for i in range(64):
    want = plain["input"][i][:, :, ::-1] if flip[i] else plain["input"][i]
    want = np.roll(want, (sy[i], sx[i]), axis=(1, 2))
    np.testing.assert_array_equal(full[0]["input"][i], want)
  assert not np.array_equal(plain["input"], full[0]["input"])
  evals = list(data.eval_batches("digits_events", batch_size=256))
  assert [b["input"].shape for b in evals] == [(256, 6, 16, 16, 2)] * 2
  assert sum(b["mask"].sum() for b in evals) == info.num_test


def test_roll_and_flip_by_hand():
  image = np.arange(1, 10).reshape(1, 3, 3, 1).repeat(2, 0)
  out = augment_lib.roll_and_flip(image, np.array([1, 0]), np.array([0, -1]),
                               np.array([False, True]))
  np.testing.assert_array_equal(out[0, ..., 0], [[7, 8, 9], [1, 2, 3],
                                                 [4, 5, 6]])
  np.testing.assert_array_equal(out[1, ..., 0], [[2, 1, 3], [5, 4, 6],
                                                 [8, 7, 9]])


def test_offline_event_config_trains(tmp_path):
  config = digits_events_config.get_config()
  config.num_iterations = 1
  config.epochs_per_iteration = 1
  config.data.batch_size = 431  # 3 steps per epoch (1,293 after validation)
  config.log_every_steps = 1
  config.sparsity.rewire_every = 1  # not in the iteration's last step
  summary = train.train_and_evaluate(config, str(tmp_path))
  row = summary["iterations"][0]
  assert row["step"] == 3 and 0.0 <= row["test_accuracy"] <= 1.0
  assert row["sops"] > 0 and row["macs_first_layer"] == 0  # spike input
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    logged = [json.loads(line) for line in f]
  losses = [r["loss"] for r in logged if r["event"] == "train"]
  assert len(losses) == 3 and all(np.isfinite(losses))
  assert [r["step"] for r in logged if r["event"] == "rewire"] == [1, 2]
  assert pathlib.Path(tmp_path, "summary.json").exists()
