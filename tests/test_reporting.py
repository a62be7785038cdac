"""Workdir files: JSON lines, atomic JSON, resume truncation, TensorBoard
scalars; the progress bar and lines; the config line."""

import io
import json

import numpy as np
import pytest

from experiments.configs import default
from snn_sparse.training import reporting, tensorboard


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


def test_read_events_skips_an_incomplete_last_line(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"event": "train", "step": 10}\n{"event": "eval", "st')
  assert reporting.read_events(str(path)) == [{"event": "train", "step": 10}]
  path.write_text('{"event": "tr\n{"event": "eval", "step": 10}\n')
  with pytest.raises(ValueError, match=r"metrics\.jsonl, line 1, is not "
                     "JSON"):  # only the last line may be cut short
    reporting.read_events(str(path))


def test_truncate_after_drops_an_incomplete_last_line(tmp_path, caplog):
  path = tmp_path / "metrics.jsonl"
  log = reporting.MetricsLog(str(path))
  log.write("train", step=10, loss=1.0)
  with open(path, "a") as f:
    f.write('{"event": "train", "step": 2')  # a run killed while writing
  log.truncate_after(10)
  assert "ended with an incomplete line" in caplog.text
  log.write("train", step=20, loss=0.5)
  assert [e["step"] for e in reporting.read_events(str(path))] == [10, 20]


def test_progress_bar_on_a_terminal(monkeypatch):
  # Wide enough for the whole postfix, whatever the rate this machine shows.
  monkeypatch.setenv("COLUMNS", "200")
  out = io.StringIO()
  p = reporting.Progress(total_steps=100, start_step=0, batch_size=10,
                         stream=out, bar=True)
  p.update(50, "[iteration 1] ", {"loss": 0.5, "accuracy": 0.75,
                                  "learning_rate": 0.1})
  p.restart(50)
  p.update(100, "[iteration 2] ", {"loss": 0.25, "accuracy": 0.875})
  screen = out.getvalue()
  assert "\n" not in screen.rstrip("\n")  # one line, redrawn with \r
  assert screen.endswith("\n")  # closed at the last step
  last = screen.rstrip("\n").split("\r")[-1]
  assert last.startswith("iteration 2 100%|")
  assert "step 100/100" in last and "samples/s" in last
  assert "loss 0.25" in last and "accuracy 0.875" in last
  assert "learning_rate" not in last


def test_progress_lines_when_not_a_terminal(tmp_path):
  with open(tmp_path / "log.txt", "w") as f:  # a log file: no bar
    p = reporting.Progress(total_steps=100, start_step=20, batch_size=10,
                           stream=f)
    p.update(50, "[iteration 1] ", {"loss": 0.5})
  lines = (tmp_path / "log.txt").read_text().splitlines()
  assert lines[0] == "Resuming at step 20/100."
  assert lines[1].startswith("[iteration 1] step 50/100 (50%) | ")
  assert len(lines) == 2
  quiet = io.StringIO()
  reporting.Progress(100, 0, 10, enabled=False, stream=quiet,
                     bar=True).update(100)
  assert not quiet.getvalue()


def test_describe_config():
  config = default.get_config()
  line = reporting.describe_config(config, {"sparsity.algorithm": "rigl"})
  assert line == ("digits | convnet, T=4 | pq_dst (layer scope) | 10 "
                  "iterations x 5 epochs, batch 64 | seed 0 | "
                  "sparsity.algorithm=rigl")


def test_metrics_log_writes_tensorboard_scalars(tmp_path):
  pytest.importorskip("tensorboardX")
  tb = tmp_path / "tb"
  log = reporting.MetricsLog(str(tmp_path / "m.jsonl"), tensorboard_dir=str(tb))
  log.truncate_after(0)
  log.write("train", step=10, loss=np.float32(0.5), accuracy=0.75)
  log.write("eval", step=20, iteration=1, test_accuracy=0.9,
            connectivity_per_layer={"Dense_0/kernel": 0.4},
            pq_index_per_layer={"Dense_0/kernel": 0.2})
  scalars = tensorboard.read_scalars(str(tb))  # flushed at each write
  assert scalars["train/loss"] == [(10, 0.5)]
  assert scalars["eval/test_accuracy"] == [(20, pytest.approx(0.9))]
  assert scalars["density/Dense_0/kernel"] == [(20, pytest.approx(0.4))]
  assert scalars["pq_index/Dense_0/kernel"] == [(20, pytest.approx(0.2))]
  log.close()
  off = tmp_path / "off"
  reporting.MetricsLog(str(tmp_path / "o.jsonl"), enabled=False,
                       tensorboard_dir=str(off)).write("train", step=1, loss=1)
  assert not off.exists()  # only the first process writes


def test_metrics_log_without_tensorboardx(tmp_path, monkeypatch):
  monkeypatch.setattr(tensorboard, "available", lambda: False)
  log = reporting.MetricsLog(str(tmp_path / "m.jsonl"),
                             tensorboard_dir=str(tmp_path / "tb"))
  log.write("train", step=1, loss=1.0)
  assert not (tmp_path / "tb").exists()
  assert reporting.read_events(str(tmp_path / "m.jsonl"))[0]["loss"] == 1.0
