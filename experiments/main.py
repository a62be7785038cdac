r"""Train and evaluate a sparse SNN from a config file.

  python -m experiments.main --config experiments/configs/default.py \
      --workdir /tmp/snn_sparse/default [--config.sparsity.algorithm=rigl ...]

Every field of the config can be overridden with ``--config.a.b=value``; a
misspelt field is refused with the closest real one. Running the same
command on the same workdir resumes the run.

The screen shows one line that says what trains, the progress (a live bar
on a terminal, one line per log interval otherwise) and the per-iteration
table; the workdir gets ``summary.json``, ``summary.png`` and
``metrics.jsonl``. Other libraries' logs are hidden unless ``--verbosity``
asks for them (``--verbosity=0``: INFO). On Linux the command first
restarts itself once with transparent huge pages for host memory
(``snn_sparse/platform/hugepages.py``; ``SNN_SPARSE_HUGEPAGES=0`` turns it
off).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import sys
import threading
import traceback

from absl import app, flags, logging
import ml_collections
from ml_collections import config_flags

from snn_sparse.platform import hugepages
from snn_sparse.training import distributed, preemption, preflight
from snn_sparse.training import reporting, train

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "configs")


def config_catalog() -> list[tuple[str, str]]:
  """``(file name, first line of its docstring)`` of each shipped config."""
  out = []
  for name in sorted(os.listdir(CONFIG_DIR)):
    if not name.endswith(".py") or name.startswith("_"):
      continue
    with open(os.path.join(CONFIG_DIR, name)) as f:
      doc = ast.get_docstring(ast.parse(f.read())) or ""
    out.append((name, doc.strip().splitlines()[0] if doc.strip() else ""))
  return out


def _catalog_text() -> str:
  rows = config_catalog()
  width = max(len(n) for n, _ in rows)
  lines = [f"  {n.ljust(width)}  {d}" for n, d in rows]
  return ("\nConfigs (experiments/configs/; each file's docstring has its "
          "command,\nrun time and expected result):\n" + "\n".join(lines) +
          "\n")


# absl's --help prints this module's docstring: it lists the configs.
__doc__ += _catalog_text()

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
flags.DEFINE_bool("check_config", False,
                  "Check the config, the workdir and the data sources, print "
                  "every problem found, and exit without training.")
flags.mark_flags_as_required(["config", "workdir"])

# Exit codes: 1 a refusal or an error; 75 (EX_TEMPFAIL) stopped by a signal
# or a lost process, after saving: the same command resumes.
EXIT_ERROR = 1
EXIT_RESUMABLE = distributed.EXIT_PROCESS_LOST


def _config_path(argv: list[str]) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def unknown_field_message(argv: list[str]) -> str | None:
  """Names the first ``--config.a.b`` in ``argv`` that the config lacks, and
  the closest real field; ``None`` when every field exists (or the config
  file cannot be read)."""
  path = _config_path(argv)
  if not path:
    return None
  path, _, arg = path.partition(":")
  try:
    spec = importlib.util.spec_from_file_location("_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg) if arg else module.get_config()
  except Exception:  # pylint: disable=broad-except
    return None  # absl reports the config file's own error.
  for arg in argv:
    if arg.startswith("--config."):
      message = _field_message(config, arg[len("--config."):].split("=")[0])
      if message:
        return f"{path} has no field {message}"
  return None


def _field_message(config, field: str) -> str | None:
  """``None`` if ``config`` has ``field``, else what is missing and the
  closest name at the level where it goes wrong."""
  node, done = config, []
  for part in field.split("."):
    if not isinstance(node, ml_collections.ConfigDict):
      return f"{field!r}: {'.'.join(done)} is a value, not a section."
    if part not in node:
      names = sorted(node.keys())
      close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
      where = "config." + ".".join(done) if done else "config"
      if close:
        rest = field.split(".")[len(done) + 1:]
        return (f"{field!r}. Did you mean --config."
                f"{'.'.join(done + close + rest)}?")
      return f"{field!r}. The fields of {where} are: {', '.join(names)}."
    node, done = node[part], done + [part]
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a clear message for a misspelt config field."""
  try:
    return FLAGS(argv)
  except (flags.Error, KeyError, AttributeError) as e:
    message = unknown_field_message(argv) or (
        e.args[0] if isinstance(e, KeyError) and e.args else str(e))
    sys.stderr.write(f"FATAL Flags parsing error: {message}\n"
                     "Pass --help to see the flags and the configs.\n")
    sys.exit(1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS["verbosity"].present:  # absl would raise it to INFO
    logging.set_verbosity(logging.WARNING)
    _hide_checkpoint_library_noise()
  if FLAGS.check_config:
    problems = preflight.run_problems(FLAGS.config, FLAGS.workdir)
    for problem in problems:
      print(f"- {problem}", file=sys.stderr)
    if problems:
      print(f"{len(problems)} problem(s) found.", file=sys.stderr)
      sys.exit(EXIT_ERROR)
    print("No problem found: the config, the workdir and the data sources "
          "are ready.")
    return
  overrides = config_flags.get_override_values(FLAGS["config"])
  print(f"{config_flags.get_config_filename(FLAGS['config'])}: "
        f"{reporting.describe_config(FLAGS.config, overrides)}", flush=True)
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except preemption.Interrupted as e:
    _exit(e, EXIT_RESUMABLE)
  except Exception as e:  # pylint: disable=broad-except
    _exit(e, EXIT_ERROR)


def _from_checkpoint_library(tb) -> bool:
  files = [frame.filename for frame in traceback.extract_tb(tb)]
  return any(f"{os.sep}orbax{os.sep}" in f or f"{os.sep}asyncio{os.sep}" in f
             for f in files)


def _hide_checkpoint_library_noise() -> None:
  """Without --verbosity, the checkpoint library's own error logs and its
  background threads' tracebacks are not shown: a failed save reaches the
  user as one message from the trainer (a full disk, for instance)."""
  logging.get_absl_handler().addFilter(
      lambda record: f"{os.sep}orbax{os.sep}" not in record.pathname)
  default = threading.excepthook

  def excepthook(args):
    if not _from_checkpoint_library(args.exc_traceback):
      default(args)
  threading.excepthook = excepthook


def _exit(error: BaseException, code: int) -> None:
  """Ends the process with ``error`` as one short paragraph, last.

  The traceback is shown only with ``--verbosity``. ``os._exit`` skips the
  shutdown of other libraries' threads, which would print tracebacks of
  their own after the message.
  """
  verbose = FLAGS["verbosity"].present
  if verbose:
    traceback.print_exception(error)
  distributed.before_exit(error)
  known = isinstance(error, (ValueError, KeyError, OSError, RuntimeError,
                             FloatingPointError))
  message = str(error) if known else f"{type(error).__name__}: {error}"
  lines = message.strip().splitlines() or [type(error).__name__]
  if len(lines) > 6:
    lines = lines[:6] + ["..."]
  if not verbose and not isinstance(error, preemption.Interrupted):
    lines.append("(--verbosity=0 shows the traceback.)")
  sys.stdout.flush()
  print("\n" + "\n".join(lines), file=sys.stderr, flush=True)
  os._exit(code)  # pylint: disable=protected-access


if __name__ == "__main__":
  hugepages.reexec()
  app.run(main, flags_parser=parse_flags)
