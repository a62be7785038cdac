"""The default job's numbers are pinned: every algorithm, every event.

A shortened default job (the digits convnet of
``experiments/configs/default.py``: 3 iterations of 2 epochs, an event every
10 steps) runs for each algorithm, and its log is compared exactly with
``tests/golden/default_job.json``: every mask fingerprint, train loss and
accuracy, every event's counts and PQ indices, and the summary rows. A
refactoring must leave them bit-identical; a deliberate change of numbers
rewrites the file (``python -m tests.test_golden_default_job --write
[ALGORITHM ...]`` from the repository root) in the same commit, and says
why.
"""

import json
import os
import sys

import pytest

from experiments.configs import default
from snn_sparse.training import reporting, train

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "default_job.json")
ALGORITHMS = ("pq_dst", "esl", "set", "set_mocanu", "rigl", "static", "gmp",
              "sap", "dense")
# Logged values that depend on the machine's speed, not on the numerics.
_TIMING = ("samples_per_s", "seconds")


def _config(algorithm):
  config = default.get_config()
  config.num_iterations = 3
  config.epochs_per_iteration = 2
  config.log_every_steps = 10
  config.sparsity.rewire_every = 10
  config.sparsity.algorithm = algorithm
  return config


def _drop_timing(record):
  return {k: v for k, v in record.items()
          if not any(k.endswith(t) for t in _TIMING)}


def record(algorithm, workdir):
  """The numbers of one shortened default job: events and summary rows."""
  summary = train.train_and_evaluate(_config(algorithm), workdir)
  events = [_drop_timing(e) for e in
            reporting.read_events(os.path.join(workdir, "metrics.jsonl"))]
  rows = [_drop_timing(r) for r in summary["iterations"]]
  return json.loads(json.dumps({"events": events, "rows": rows,
                                "best_iteration": summary["best_iteration"]}))


def _golden():
  with open(GOLDEN) as f:
    return json.load(f)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_default_job_numbers_are_unchanged(tmp_path, algorithm):
  want = _golden()[algorithm]
  got = record(algorithm, str(tmp_path))
  assert len(got["events"]) == len(want["events"])
  for g, w in zip(got["events"], want["events"]):
    assert g == w, (g.get("event"), g.get("step"))
  assert got["rows"] == want["rows"]
  assert got["best_iteration"] == want["best_iteration"]


if __name__ == "__main__":
  import tempfile
  names = sys.argv[2:] or ALGORITHMS
  if sys.argv[1:2] != ["--write"]:
    sys.exit("usage: python -m tests.test_golden_default_job --write "
             "[ALGORITHM ...]")
  out = _golden() if os.path.exists(GOLDEN) else {}
  for name in names:
    with tempfile.TemporaryDirectory() as workdir:
      out[name] = record(name, workdir)
  with open(GOLDEN, "w") as f:
    json.dump(out, f, indent=0, sort_keys=True)
    f.write("\n")
