"""Workdir files: JSON lines, atomic JSON, resume truncation, progress line."""

import io
import json

import numpy as np

from snn_sparse.training import reporting


def test_metrics_log_truncates_after_the_restored_step(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  log = reporting.MetricsLog(path)
  for step in (10, 20, 30):
    log.write("train", step=step, loss=np.float32(1.0 / step))
  log.truncate_after(20)
  rows = reporting.read_events(path)
  assert [r["step"] for r in rows] == [10, 20]
  assert rows[0] == {"event": "train", "step": 10, "loss": 0.10000000149011612}
  reporting.MetricsLog(str(tmp_path / "off.jsonl"), enabled=False).write(
      "train", step=1)
  assert not (tmp_path / "off.jsonl").exists()


def test_write_json_atomic(tmp_path):
  path = str(tmp_path / "s.json")
  reporting.write_json_atomic(path, {"a": np.arange(3), "b": np.int64(2)})
  assert json.load(open(path)) == {"a": [0, 1, 2], "b": 2}
  assert not (tmp_path / "s.json.tmp").exists()


def test_progress_line_has_throughput_and_eta():
  out = io.StringIO()
  p = reporting.Progress(total_steps=100, start_step=0, batch_size=10,
                         stream=out)
  rate = p.update(50, "[it 1] ", {"loss": 0.5})
  line = out.getvalue()
  assert rate > 0
  assert line.startswith("[it 1] step 50/100 (50%) | ")
  assert "samples/s | ETA " in line and line.rstrip().endswith("loss 0.5")


def test_table():
  text = reporting.table([{"a": 1, "b": 0.5}, {"a": 2, "b": None}],
                         [("A", "a", "d"), ("B", "b", ".2f")])
  assert text.splitlines() == ["A     B", "1  0.50", "2     -"]
