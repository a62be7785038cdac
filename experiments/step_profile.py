r"""Where one compiled train step spends its time, by kind of operation.

  python -m experiments.step_profile --model resnet19 --batch_size 32 \
      --time_steps 2

Builds the benchmark's train step (``experiments/benchmark.py``: masks at
50%, the trainer's own jitted step), runs it under ``jax.profiler`` for
``--steps`` calls and sums the durations of the executed HLO operations per
step. Rows are grouped by kind: convolutions (forward and input gradient)
and matmuls by output shape, and every other fused operation by its name
without the numeric suffix (``multiply_add_fusion``, ``copy``, ...).
A loop (``while``) is listed with its whole duration and its body's
operations are listed too; the last line sums all operations but loops.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import tempfile

from absl import app, flags
import jax

from experiments import benchmark
from snn_sparse.platform import hugepages

FLAGS = flags.FLAGS  # --model, --batch_size, --time_steps: the benchmark's
flags.DEFINE_integer("steps", 2, "Profiled train steps.")
flags.DEFINE_integer("rows", 25, "Rows to print.")

_SKIP = ("$", "end: ")  # Python frames and end markers, not HLO ops


def _calls(hlo_text: str) -> dict[str, tuple[str, str]]:
  """Fusion instruction -> (its output shape, what its computation computes)."""
  bodies, current = {}, None
  for line in hlo_text.splitlines():
    header = re.match(r"^%?([\w.\-]+) .*\{$", line)
    if header and not line.startswith(" "):
      current = header.group(1)
      bodies[current] = []
    elif current:
      bodies[current].append(line)
  calls = {}
  for line in hlo_text.splitlines():
    match = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) \S+\(.*calls=%?"
                     r"([\w.\-]+)", line)
    if match:
      body = "\n".join(bodies.get(match.group(3), []))
      kind = ("conv" if "convolution(" in body
              else "dot" if " dot(" in body else None)
      calls[match.group(1)] = (match.group(2), kind)
  return calls


def profile(model: str, batch_size: int, time_steps: int,
            steps: int) -> list[tuple[str, float, int]]:
  """``[(kind, ms per step, calls per step)]``, largest first."""
  _, state, batch, (train_step, *_) = benchmark.setup(
      model, batch_size, time_steps, algorithm="pq_dst", scope="layer")
  compiled = train_step.lower(state, batch).compile()
  calls = _calls(compiled.as_text())
  for _ in range(2):  # warm-up
    state, out = compiled(state, batch)
  jax.block_until_ready(out)
  with tempfile.TemporaryDirectory() as logdir:
    with jax.profiler.trace(logdir, create_perfetto_trace=True):
      for _ in range(steps):
        state, out = compiled(state, batch)
        jax.block_until_ready(out)
    (path,) = glob.glob(os.path.join(logdir, "**", "*.trace.json.gz"),
                        recursive=True)
    with gzip.open(path) as f:
      events = json.load(f)["traceEvents"]
  total_us, count = collections.Counter(), collections.Counter()
  for event in events:
    name = event.get("name", "")
    if event.get("ph") != "X" or name.startswith(_SKIP) or (
        "Thunk" in name or "ThreadPool" in name or "PjRt" in name
        or "Pjit" in name or name == "ParseArguments"):
      continue
    shape, kind = calls.get(name, (None, None))
    key = (f"{kind} {shape}" if kind
           else re.sub(r"\.\d+$", "", name))
    total_us[key] += event["dur"]
    count[key] += 1
  return [(key, us / steps / 1e3, count[key] // steps)
          for key, us in total_us.most_common()]


def main(argv):
  del argv
  rows = profile(FLAGS.model, FLAGS.batch_size, FLAGS.time_steps,
                 FLAGS.steps)
  print(f"{'ms/step':>9} {'calls':>6}  operation")
  for key, ms, calls in rows[:FLAGS.rows]:
    print(f"{ms:9.1f} {calls:6d}  {key}")
  leaves = sum(ms for key, ms, _ in rows if key != "while")
  print(f"{leaves:9.1f}         all operations but loops (whose bodies are "
        "counted)")


if __name__ == "__main__":
  hugepages.reexec()
  app.run(main)
