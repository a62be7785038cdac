"""TensorBoard scalars of the metrics events (the ``[tb]`` extra)."""

import os
import struct

import numpy as np
import pytest

from snn_sparse.training import tensorboard


def test_scalars_of_each_event():
  assert tensorboard.scalars("train", {
      "loss": np.float32(0.5), "accuracy": 1, "learning_rate": 0.1,
      "samples_per_s": 100.0, "iteration": 1, "step": 3}) == {
          "train/loss": 0.5, "train/accuracy": 1.0,
          "train/learning_rate": 0.1, "train/samples_per_s": 100.0}
  row = {"iteration": 2, "step": 40, "epoch": 2, "best": True,
         "val_accuracy": None, "test_accuracy": 0.9, "connectivity": 0.4,
         "connectivity_per_layer": {"Conv_0/kernel": 0.7},
         "pq_index_per_layer": {"Conv_0/kernel": 0.13},
         "firing_rate_per_layer": {"SpikingNeuron_0": 0.2}, "sops": 1e5}
  assert tensorboard.scalars("eval", row) == {
      "eval/test_accuracy": 0.9, "eval/connectivity": 0.4,
      "density/Conv_0/kernel": 0.7, "pq_index/Conv_0/kernel": 0.13,
      "eval/firing_rate_per_layer/SpikingNeuron_0": 0.2, "eval/sops": 1e5}
  assert tensorboard.scalars("rewire", {
      "pq_index/Conv_0/kernel": 0.2, "total/grown": 7,
      "mask_fingerprint": 12345}) == {
          "rewire/pq_index/Conv_0/kernel": 0.2, "rewire/total/grown": 7.0}


def _records(path):
  data = open(path, "rb").read()
  out, offset = [], 0
  while offset < len(data):
    (length,) = struct.unpack("<Q", data[offset:offset + 8])
    out.append(data[offset + 12:offset + 12 + length])
    offset += 16 + length
  return out


def test_a_resumed_run_purges_the_steps_it_rewrites(tmp_path):
  pytest.importorskip("tensorboardX")
  from tensorboardX.proto import event_pb2  # pylint: disable=import-outside-toplevel
  first = tensorboard.EventWriter(str(tmp_path))
  first.write("train", 10, {"loss": 1.0})
  first.write("train", 20, {"loss": 0.5})
  first.close()
  resumed = tensorboard.EventWriter(str(tmp_path), purge_step=11)
  resumed.write("train", 20, {"loss": 0.25})
  resumed.close()
  files = sorted(os.listdir(tmp_path))
  assert len(files) == 2  # one file per start
  events = [event_pb2.Event.FromString(r)
            for name in files for r in _records(tmp_path / name)]
  starts = [e for e in events if e.HasField("session_log")]
  assert [(e.step, e.session_log.status) for e in starts] == [
      (11, event_pb2.SessionLog.START)]  # TensorBoard drops steps >= 11
  assert tensorboard.read_scalars(str(tmp_path))["train/loss"] == [
      (10, 1.0), (20, 0.5), (20, 0.25)]
