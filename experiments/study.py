r"""Run a study: every arm over its seeds, at equal final density, then the
table and the figure.

  python -m experiments.study --study NAME --dir DIR [--seeds 0,1,2]
      [--jobs N] [--scale small|full] [--only ARM[,ARM]] [--targets FILE]
      [--aggregate_only]

A study is ``experiments/studies/NAME.py`` (see that package). Each run is
one ``python -m experiments.main --config ... --workdir DIR/ARM/seedK
--config.x=...`` in a subprocess of its own, run from the repository root,
so a crash or a kill of one run leaves the others alone, and each run is
re-run exactly by its one command (printed, and written to
``DIR/results.md``). Its output goes to ``DIR/ARM/seedK.log``, the wall
time of each invocation to ``DIR/ARM/seedK.timing.json``.

* **Skip and resume.** A run whose workdir holds ``summary.json`` is
  skipped; an interrupted one resumes (the trainer resumes a workdir by
  itself); one whose workdir another process holds is left to it. A
  workdir that holds a run of another config is refused before anything
  starts. So a study spans sittings: run the same command again.
* **Equal final density.** The reference arm (``target="reference"``,
  ``pq_dst`` at layer scope) runs first. Once all its seeds have finished,
  the target ``d`` is the mean of their final connectivities, and each arm
  with a target gets the setting that ends at ``d``
  (``experiments/studies/_equal_density.py``). They are written to
  ``DIR/targets.json`` and printed, and stay fixed: runs already started
  at them must not move. Should the reference's seeds change later, the
  study says what to delete. ``--targets FILE`` takes them from another
  study directory's ``targets.json`` instead (a published one, say), so
  one targeted arm runs alone: ``--only constant_ratio --targets FILE``.
* ``--jobs N`` runs N at once. On a CPU, XLA runs each convolution on one
  core, so runs side by side fill the machine better: on 2 cores the
  Fashion-MNIST convnet trains at about 560 samples/s alone and 2 x 345
  side by side (``--jobs 2``, 1.23x the throughput). On a GPU keep 1: each
  run takes most of the device's memory. Ctrl-C or SIGTERM stops every run at
  its next step boundary, after a checkpoint, and exits with 75; run the
  same command to go on.
* **Aggregate.** At the end (and alone with ``--aggregate_only``, also on
  a partial study), ``DIR/results.json``, ``DIR/results.md`` and
  ``DIR/results.png`` (``experiments/studies/_aggregate.py``).

Exit codes: 0 every planned run finished; 1 a run failed, waits on
another, or the input is bad; 75 stopped by a signal, resumable.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Mapping, Sequence

from experiments import studies
from experiments.studies import _aggregate
from experiments.studies import Arm, Study
from snn_sparse.training import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXIT_RESUMABLE = 75
TARGETS_FILE = "targets.json"


class StudyError(ValueError):
  """Bad input or a state the study cannot go on from; the message says
  what to do."""


# ---- The plan ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of a study: an arm at a seed, in ``DIR/ARM/seedK``."""

  arm: Arm
  seed: int
  workdir: str

  @property
  def key(self) -> str:
    return f"{self.arm.name}/seed{self.seed}"

  @property
  def log(self) -> str:
    return self.workdir + ".log"

  @property
  def timing(self) -> str:
    """Where the wall time of each of its invocations is kept."""
    return self.workdir + ".timing.json"


def parse_seeds(text: str) -> tuple[int, ...]:
  """``"0,1,2"`` -> ``(0, 1, 2)``; distinct integers >= 0."""
  parts = [p.strip() for p in text.split(",")]
  if not text.strip() or not all(p.isdigit() for p in parts):
    raise StudyError(f"--seeds {text!r}: give distinct integers >= 0 "
                     "separated by commas, e.g. --seeds 0,1,2.")
  seeds = tuple(int(p) for p in parts)
  if len(set(seeds)) != len(seeds):
    raise StudyError(f"--seeds {text!r} repeats a seed; give each once.")
  return seeds


def parse_only(text: str | None, study: Study) -> tuple[str, ...] | None:
  """``"a,b"`` -> ``("a", "b")``, each an arm of ``study``."""
  if text is None:
    return None
  names = tuple(n.strip() for n in text.split(",") if n.strip())
  arms = [a.name for a in study.arms]
  unknown = [n for n in names if n not in arms]
  if unknown or not names:
    raise StudyError(f"--only {text!r}: unknown arm(s) "
                     f"{', '.join(unknown) or '(none given)'}; the arms of "
                     f"{study.name} are {', '.join(arms)}.")
  return names


def arm_seeds(arm: Arm, seeds: Sequence[int]) -> tuple[int, ...]:
  """The seeds an arm runs: the first ``arm.num_seeds`` of ``seeds``."""
  return tuple(seeds[:arm.num_seeds] if arm.num_seeds else seeds)


def plan(study: Study, directory: str, seeds: Sequence[int],
         only: Sequence[str] | None = None) -> list[Run]:
  """The runs, the reference arm's first, then the arms in study order."""
  arms = [a for a in study.arms if only is None or a.name in only]
  arms.sort(key=lambda a: a.target != studies.REFERENCE)
  return [Run(a, s, os.path.join(directory, a.name, f"seed{s}"))
          for a in arms for s in arm_seeds(a, seeds)]


def run_fields(study: Study, arm: Arm, seed: int,
               targets: Mapping[str, Any] | None) -> dict[str, Any] | None:
  """The run's config fields over the base config, or ``None`` while its
  density target is unknown."""
  fields = {**study.settings, **arm.overrides}
  if arm.targeted:
    if not targets:
      return None
    t = targets["arms"][arm.name]
    fields[t["field"]] = t["value"]
  fields["seed"] = seed
  return fields


# ---- Configs and commands --------------------------------------------------


def base_config(study: Study):
  """The study's base config (``get_config()`` of its config file)."""
  path = os.path.join(ROOT, study.config)
  spec = importlib.util.spec_from_file_location("_study_base_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def build_config(study: Study, fields: Mapping[str, Any]):
  """The base config with ``fields`` set, as ``experiments.main`` builds it
  from the run's command (a field the config lacks is refused)."""
  config = base_config(study)
  config.lock()
  for dotted, value in fields.items():
    try:
      config.update_from_flattened_dict({dotted: value})
    except (KeyError, AttributeError, TypeError) as e:
      raise StudyError(
          f"experiments/studies/{study.name}.py sets {dotted}={value!r}, but "
          f"{study.config} has no such field ({e}); fix the study.") from None
  return config


def render(value: Any) -> str:
  """A value as ``experiments.main`` parses it from ``--config.x=VALUE``."""
  if isinstance(value, bool) or isinstance(value, str):
    return str(value)
  if isinstance(value, (int, float)):
    return repr(value)
  if isinstance(value, (tuple, list)):
    return repr(tuple(value))
  raise StudyError(f"cannot pass {value!r} on the command line.")


def command(study: Study, run: Run, fields: Mapping[str, Any]) -> list[str]:
  """The run's command line (from the repository root)."""
  return (["python", "-m", "experiments.main", "--config", study.config,
           "--workdir", run.workdir] +
          [f"--config.{k}={render(v)}" for k, v in fields.items()])


def shell(argv: Sequence[str]) -> str:
  return " ".join(shlex.quote(a) for a in argv)


def study_command(study: Study, directory: str, seeds: Sequence[int],
                  arm: str | None = None) -> str:
  """The command that runs (or resumes, or skips) the study or one arm."""
  argv = ["python", "-m", "experiments.study", "--study", study.name,
          "--dir", directory]
  if study.scale != "small":
    argv += ["--scale", study.scale]
  if tuple(seeds) != tuple(study.seeds):
    argv += ["--seeds", ",".join(map(str, seeds))]
  if arm:
    argv += ["--only", arm]
  return shell(argv)


def config_json(config) -> dict:
  return json.loads(config.to_json_best_effort())


def workdir_problem(run: Run, config) -> str | None:
  """Why the run's workdir cannot take it (it holds a run of another
  config), or ``None``."""
  try:
    workdir_lib.check_same_config(run.workdir, config_json(config))
  except ValueError as e:
    return f"{run.key}: {e} (Or give the study another --dir.)"
  return None


def state(run: Run) -> str:
  """``"done"``, ``"busy"`` (another process holds it), ``"resume"`` or
  ``"new"``."""
  if os.path.exists(os.path.join(run.workdir, "summary.json")):
    return "done"
  if os.path.isdir(run.workdir) and workdir_lib.holder(run.workdir):
    return "busy"
  if os.path.isdir(os.path.join(run.workdir, "checkpoints")):
    return "resume"
  return "new"


# ---- Equal final density ---------------------------------------------------


def reference_finals(study: Study, directory: str, seeds: Sequence[int]
                     ) -> tuple[dict[int, float], list[int]]:
  """The reference's final connectivity per finished seed, and the seeds
  not finished yet."""
  ref = study.reference
  finals, missing = {}, []
  for seed in arm_seeds(ref, seeds):
    record = _aggregate.read_run(os.path.join(directory, ref.name,
                                              f"seed{seed}"))
    if record is None:
      missing.append(seed)
    else:
      finals[seed] = record["final_connectivity"]
  return finals, missing


def compute_targets(study: Study, finals: Mapping[int, float]) -> dict:
  """Every targeted arm's setting for the target of ``finals``."""
  from experiments.studies import _equal_density  # pylint: disable=g-import-not-at-top
  d = _equal_density.target_density(finals)
  arms = {}
  for arm in study.arms:
    if not arm.targeted:
      continue
    entry = {"target": arm.target, "field": f"sparsity.{arm.target}"}
    if arm.target in _equal_density.RATIO_TARGETS:
      # The ratio field itself keeps its base value; the seed does not
      # matter (the counts are seed-independent at layer scope).
      fields = {**study.settings, **arm.overrides, "seed": study.seeds[0]}
      try:
        arithmetic = _equal_density.NetPruneArithmetic(
            build_config(study, fields), arm.target)
        value, achieved = arithmetic.solve(d)
      except StudyError:
        raise
      except ValueError as e:
        raise StudyError(f"arm {arm.name}: {e}") from None
      entry.update(value=value, predicted_final_connectivity=achieved,
                   tolerance=arithmetic.tolerance())
    else:
      entry["value"] = d
    arms[arm.name] = entry
  return {"study": study.name, "scale": study.scale,
          "reference": {"arm": study.reference.name, "seeds": sorted(finals),
                        "final_connectivity": {str(s): finals[s]
                                               for s in sorted(finals)},
                        "target": d},
          "arms": arms}


def targets_path(directory: str) -> str:
  return os.path.join(directory, TARGETS_FILE)


def read_targets(directory: str) -> dict | None:
  path = targets_path(directory)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def write_targets(directory: str, targets: Mapping[str, Any]) -> None:
  """``DIR/targets.json``, written whole or not at all."""
  os.makedirs(directory, exist_ok=True)
  tmp = targets_path(directory) + ".tmp"
  with open(tmp, "w") as f:
    json.dump(targets, f, indent=1)
  os.replace(tmp, targets_path(directory))


def arrange_targets(study: Study, directory: str, seeds: Sequence[int]
                    ) -> dict | None:
  """The targets: from ``targets.json`` when it holds them for the
  reference's seeds, else computed once the reference has finished
  (``None`` until then), written and printed."""
  if study.reference is None:
    return None
  finals, missing = reference_finals(study, directory, seeds)
  wanted = sorted(arm_seeds(study.reference, seeds))
  old = read_targets(directory)
  if old is not None:
    if (old["study"], old["scale"]) != (study.name, study.scale):
      raise StudyError(
          f"{targets_path(directory)} belongs to study {old['study']} at scale"
          f" {old['scale']}; give this study another --dir.")
    if old["reference"]["seeds"] == wanted or old.get("adopted_from"):
      return old
    started = [a.name for a in study.arms
               if a.targeted and os.path.isdir(os.path.join(directory, a.name))]
    if started:
      raise StudyError(
          f"{targets_path(directory)} was computed from {study.reference.name}"
          f" seeds {old['reference']['seeds']}, but --seeds now gives "
          f"{wanted}, and arms {', '.join(started)} already ran at the old "
          f"target. Pass --seeds {','.join(map(str, seeds))} with the old "
          "seeds, or delete targets.json and those arms' directories to "
          "re-target.")
  if missing:
    return None
  targets = compute_targets(study, finals)
  write_targets(directory, targets)
  print(describe_targets(targets), flush=True)
  return targets


def adopt_targets(study: Study, directory: str, path: str) -> dict:
  """Uses the targets of ``path`` (a study's ``targets.json``, e.g. a
  published one) in ``directory``, so that the targeted arms run without
  the reference arm. Refused when the file is of another study or scale,
  lacks a targeted arm, or ``directory`` already holds other targets."""
  try:
    with open(path) as f:
      targets = json.load(f)
    study_of = (targets["study"], targets["scale"])
    arms, d = targets["arms"], float(targets["reference"]["target"])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise StudyError(f"--targets {path}: cannot read a study's targets.json "
                     f"from it ({e}).") from None
  if study_of != (study.name, study.scale):
    raise StudyError(f"--targets {path} holds the targets of study "
                     f"{study_of[0]} at scale {study_of[1]}, not of "
                     f"{study.name} at scale {study.scale}.")
  lacking = [a.name for a in study.arms
             if a.targeted and a.name not in arms]
  if lacking:
    raise StudyError(f"--targets {path} has no target for arm(s) "
                     f"{', '.join(lacking)}.")
  old = read_targets(directory)
  if old is not None:
    if (old["arms"], old["reference"]) != (arms, targets["reference"]):
      raise StudyError(
          f"{targets_path(directory)} holds other targets (d = "
          f"{old['reference']['target']:.6f}) than --targets {path} (d = "
          f"{d:.6f}); give another --dir.")
    return old
  targets["adopted_from"] = path
  write_targets(directory, targets)
  print(f"Targets from {path}.\n" + describe_targets(targets), flush=True)
  return targets


def describe_targets(targets: Mapping[str, Any]) -> str:
  ref = targets["reference"]
  lines = [f"Equal final density: target {ref['target']:.6f}, the mean final "
           f"connectivity of {ref['arm']} over seeds "
           f"{', '.join(map(str, ref['seeds']))} ("
           + ", ".join(f"{v:.6f}" for v in ref["final_connectivity"].values())
           + ")."]
  for name, t in targets["arms"].items():
    extra = ""
    if "predicted_final_connectivity" in t:
      extra = f" (ends at {t['predicted_final_connectivity']:.6f})"
    lines.append(f"  {name}: --config.{t['field']}={t['value']}{extra}")
  return "\n".join(lines)


# ---- Running ---------------------------------------------------------------


class _Signals:
  """SIGINT/SIGTERM: stop launching, and pass one SIGTERM to each run (it
  checkpoints at its next step and exits with 75)."""

  def __init__(self):
    self.received = None
    self.children: dict[str, subprocess.Popen] = {}
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def _handle(self, signum, frame):
    del frame
    if self.received:
      return
    self.received = signal.Signals(signum).name
    print(f"\n{self.received}: stopping every run at its next step, after a "
          "checkpoint. Run the same command again to go on.", flush=True)
    for child in self.children.values():
      if child.poll() is None:
        child.send_signal(signal.SIGTERM)


def record_time(run: Run, seconds: float, code: int) -> None:
  """Adds one invocation's wall time and exit code to ``run.timing``."""
  entries = _aggregate.read_timing(run.timing)
  entries.append({"ended": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "seconds": round(seconds, 1), "exit": code})
  with open(run.timing + ".tmp", "w") as f:
    json.dump(entries, f, indent=1)
  os.replace(run.timing + ".tmp", run.timing)


def _clock(seconds: float) -> str:
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _tail(path: str, n: int = 6) -> str:
  try:
    with open(path, errors="replace") as f:
      lines = f.read().splitlines()
  except OSError:
    return ""
  return "\n".join("    " + line[-200:] for line in lines[-n:])


def execute(study: Study, directory: str, seeds: Sequence[int],
            runs: Sequence[Run], jobs: int) -> tuple[dict, bool]:
  """Runs ``runs`` (the reference first), ``jobs`` at a time.

  Returns ``({run.key: outcome}, stopped)``; outcomes are ``"done"``,
  ``"skipped"`` (finished before), ``"failed"``, ``"stopped"``, ``"busy"``,
  ``"refused"`` (its workdir holds another config) or ``"waiting"`` (its
  target never came).
  """
  targets = arrange_targets(study, directory, seeds)
  outcomes: dict[str, str] = {}
  queue, problems = [], []
  counts = {"done": 0, "resume": 0, "new": 0, "busy": 0}
  for run in runs:
    fields = run_fields(study, run.arm, run.seed, targets)
    s = state(run)
    counts[s] += 1
    if fields is not None and s != "busy":
      problems.append(workdir_problem(run, build_config(study, fields)))
    if s == "done":
      outcomes[run.key] = "skipped"
    elif s == "busy":
      outcomes[run.key] = "busy"
      print(f"{run.key}: another process is running it; left to it.")
    else:
      queue.append(run)
  problems = [p for p in problems if p]
  if problems:
    raise StudyError("\n".join(problems))
  print(f"{study.name} ({study.scale}): {len(runs)} runs: {counts['done']} "
        f"finished (skipped), {counts['resume']} to resume, {counts['new']} "
        "new" + (f", {counts['busy']} running elsewhere" if counts["busy"]
                 else "") + f"; {jobs} at a time.")
  ref = study.reference
  total, started, blocked = len(queue), 0, False
  running: dict[str, tuple[Run, subprocess.Popen, float, Any]] = {}
  with _Signals() as signals:
    while queue or running:
      if targets is None and ref is not None and not blocked and not any(
          r.arm is ref for r in queue) and not any(
              r.arm is ref for r, *_ in running.values()):
        # The reference is through: arrange the targets once (an error
        # leaves the runs that need them waiting; the others go on).
        try:
          targets = arrange_targets(study, directory, seeds)
        except StudyError as e:
          print(f"error: {e}", flush=True)
          blocked = True
        for run in list(queue) if targets is not None else []:
          problem = workdir_problem(run, build_config(
              study, run_fields(study, run.arm, run.seed, targets)))
          if problem:
            print(f"error: {problem}", flush=True)
            queue.remove(run)
            outcomes[run.key] = "refused"
      while not signals.received and len(running) < jobs:
        run = next((r for r in queue
                    if not r.arm.targeted or targets is not None), None)
        if run is None:
          break
        queue.remove(run)
        started += 1
        fields = run_fields(study, run.arm, run.seed, targets)
        argv = command(study, run, fields)
        os.makedirs(os.path.dirname(run.workdir), exist_ok=True)
        log = open(run.log, "a")  # pylint: disable=consider-using-with
        log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} {shell(argv)}\n")
        log.flush()
        how = "resume" if state(run) == "resume" else "start"
        print(f"[{time.strftime('%H:%M:%S')}] {how} {run.key} ({started}/"
              f"{total}; log {run.log}):\n  {shell(argv)}", flush=True)
        child = subprocess.Popen([sys.executable] + argv[1:], cwd=ROOT,
                                 stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT)
        signals.children[run.key] = child
        if signals.received:  # It came while the run was being started.
          child.send_signal(signal.SIGTERM)
        running[run.key] = (run, child, time.monotonic(), log)
      if not running:
        break  # What is left waits for a target that cannot come now.
      time.sleep(0.5)
      for key, (run, child, start, log) in list(running.items()):
        code = child.poll()
        if code is None:
          continue
        log.close()
        del running[key]
        del signals.children[key]
        seconds = time.monotonic() - start
        record_time(run, seconds, code)
        took = _clock(seconds)
        record = _aggregate.read_run(run.workdir)
        if code == 0 and record is not None:
          outcomes[key] = "done"
          print(f"[{time.strftime('%H:%M:%S')}] done {key} in {took}: best "
                f"iteration {record['best_iteration']}, test accuracy "
                f"{record['test_accuracy']:.4f}, final connectivity "
                f"{record['final_connectivity']:.4f}", flush=True)
        elif code == EXIT_RESUMABLE:
          outcomes[key] = "stopped"
          print(f"[{time.strftime('%H:%M:%S')}] stopped {key} after {took}, "
                "checkpointed (resumable).", flush=True)
        else:
          outcomes[key] = "failed"
          print(f"[{time.strftime('%H:%M:%S')}] FAILED {key} (exit {code}) "
                f"after {took}; the end of {run.log}:\n{_tail(run.log)}",
                flush=True)
  stopped = signals.received is not None
  for run in queue:
    outcomes[run.key] = "stopped" if stopped else "waiting"
  return outcomes, stopped


def _waiting_note(study: Study, directory: str, seeds: Sequence[int],
                  outcomes: Mapping[str, str]) -> str | None:
  waiting = [k for k, v in outcomes.items() if v == "waiting"]
  if not waiting:
    return None
  ref = study.reference
  _, missing = reference_finals(study, directory, seeds)
  if not missing:
    return (f"{len(waiting)} run(s) wait for the target density, which "
            "could not be arranged: see the error above.")
  return (f"{len(waiting)} run(s) wait for the target density: "
          f"{ref.name} has not finished seed(s) "
          f"{', '.join(map(str, missing))}. Run "
          f"`{study_command(study, directory, seeds, ref.name)}` (see its "
          "log if it failed), then this command again.")


# ---- Aggregation -----------------------------------------------------------


def aggregate(study: Study, directory: str, seeds: Sequence[int]) -> dict:
  """Writes ``results.json``, ``results.md`` and ``results.png`` for every
  arm of the study (finished seeds; the others listed as pending)."""
  targets = read_targets(directory)
  if targets and (targets["study"], targets["scale"]) != (study.name,
                                                          study.scale):
    targets = None
  arms = []
  for arm in study.arms:
    runs = []
    for run in plan(study, directory, seeds, only=[arm.name]):
      fields = run_fields(study, arm, run.seed, targets)
      runs.append({"seed": run.seed, "workdir": run.workdir,
                   "timing": run.timing,
                   "command": None if fields is None else shell(
                       command(study, run, fields))})
    arms.append({"name": arm.name, "description": arm.description,
                 "target": arm.target, "runs": runs,
                 "command": study_command(study, directory, seeds, arm.name)})
  header = {"study": study.name, "scale": study.scale, "config": study.config,
            "settings": dict(study.settings),
            "settings_flags": [f"--config.{k}={render(v)}"
                               for k, v in study.settings.items()],
            "seeds": list(seeds), "budget": study.budget,
            "reference": study.reference and study.reference.name,
            "targets": targets,
            "command": study_command(study, directory, seeds)}
  os.makedirs(directory, exist_ok=True)
  res = _aggregate.results(header, arms, study.paired)
  png = os.path.join(directory, "results.png")
  res["notes"] = _aggregate.figure(arms, png, res["gaussian"])
  if os.path.exists(png):
    res["figure"] = "results.png"
  with open(os.path.join(directory, "results.json"), "w") as f:
    json.dump(res, f, indent=1)
  with open(os.path.join(directory, "results.md"), "w") as f:
    f.write(_aggregate.markdown(res))
  done = sum(len(a["seeds_finished"]) for a in res["arms"])
  planned = sum(a["seeds_planned"] for a in res["arms"])
  print(f"Results of {done}/{planned} runs: "
        f"{os.path.join(directory, 'results.md')} (and results.json"
        + (", results.png" if res.get("figure") else "") + ").")
  return res


# ---- Command line ----------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
  """The command line (see the top); returns the exit status."""
  parser = argparse.ArgumentParser(
      prog="python -m experiments.study",
      description=" ".join(__doc__.split("\n\n")[0].split()),
      epilog="Studies: " + ", ".join(studies.names()) + ".")
  parser.add_argument("--study", required=True,
                      help="experiments/studies/STUDY.py")
  parser.add_argument("--dir", required=True, metavar="DIR",
                      help="the study's directory (one workdir per run)")
  parser.add_argument("--seeds", help="seeds, e.g. 0,1,2 (default: the "
                      "study's)")
  parser.add_argument("--jobs", type=int, default=1,
                      help="runs at once (default: %(default)s)")
  parser.add_argument("--scale", default="small",
                      help="small (default) or another scale of the study")
  parser.add_argument("--only", metavar="ARM[,ARM]",
                      help="run only these arms")
  parser.add_argument("--targets", metavar="FILE",
                      help="equal-density targets from FILE (a study's "
                      "targets.json, e.g. a published one) instead of from "
                      "the reference arm's runs")
  parser.add_argument("--aggregate_only", action="store_true",
                      help="only write the results of what has finished")
  args = parser.parse_args(argv)
  try:
    if args.jobs < 1:
      raise StudyError(f"--jobs {args.jobs}: give 1 or more.")
    try:
      study = studies.load(args.study, args.scale)
    except ValueError as e:
      raise StudyError(str(e)) from None
    seeds = parse_seeds(args.seeds) if args.seeds else study.seeds
    only = parse_only(args.only, study)
    directory = os.path.abspath(args.dir)
    if args.aggregate_only:
      aggregate(study, directory, seeds)
      return 0
    if args.targets:
      adopt_targets(study, directory, args.targets)
    runs = plan(study, directory, seeds, only)
    outcomes, stopped = execute(study, directory, seeds, runs, args.jobs)
  except StudyError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  aggregate(study, directory, seeds)
  note = _waiting_note(study, directory, seeds, outcomes)
  if note:
    print(note)
  failed = [k for k, v in outcomes.items() if v in ("failed", "refused")]
  if failed:
    print(f"{len(failed)} run(s) failed: {', '.join(failed)}; their logs are "
          f"{os.path.join(directory, 'ARM', 'seedK.log')}. Run the same "
          "command again to retry them.")
  if stopped:
    return EXIT_RESUMABLE
  return 0 if all(v in ("done", "skipped") for v in outcomes.values()) else 1


if __name__ == "__main__":
  sys.exit(main())
