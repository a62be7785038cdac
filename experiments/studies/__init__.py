"""Studies: the runs of one base config that answer one question together.

A study is a module ``experiments/studies/<name>.py`` that defines
``SCALES`` (the scales it has, e.g. ``("small", "full")``) and
``get_study(scale) -> Study``: a base config file, the settings of the
scale (its budget: iterations, epochs, T), the seeds and the arms.
``python -m experiments.study --study NAME --dir DIR`` runs it
(:mod:`experiments.study`). Modules whose name starts with ``_`` are the
runner's parts, not studies.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from typing import Any, Mapping

# How an arm's density is arranged (see experiments/studies/_equal_density.py).
REFERENCE = "reference"
TARGETS = (REFERENCE, "init_density", "target_density", "constant_ratio",
           "cosine_ratio")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Arm:
  """One arm of a study: an algorithm and its fields, over seeds.

  Attributes:
    name: the arm's directory under the study's ``DIR`` and its label.
    overrides: ``{dotted config field: value}`` on top of the study's
      settings, e.g. ``{"sparsity.algorithm": "pq_dst"}``.
    target: how its final density is arranged: ``None`` (it emerges, or is
      fixed by the algorithm), ``"reference"`` (its mean final connectivity
      over seeds is the target ``d`` of the others), ``"init_density"``
      (starts at ``d`` and keeps it), ``"target_density"`` (prunes to
      ``d``), ``"constant_ratio"`` or ``"cosine_ratio"`` (the net-prune
      ratio whose iterations end at ``d``).
    num_seeds: runs only the first ``num_seeds`` of the study's seeds
      (``None``: all of them).
    description: one line for the results table.
  """

  name: str
  overrides: Mapping[str, Any]
  target: str | None = None
  num_seeds: int | None = None
  description: str = ""

  @property
  def targeted(self) -> bool:
    """Whether its setting is derived from the target ``d``."""
    return self.target not in (None, REFERENCE)


@dataclasses.dataclass(frozen=True)
class Study:
  """A study at one scale.

  Attributes:
    name: the module's name.
    scale: the scale (one of the module's ``SCALES``).
    config: the base config file, relative to the repository root.
    settings: ``{dotted config field: value}`` for every arm (the budget).
    arms: the arms, in the order of the results table.
    seeds: the default seeds (``--seeds`` replaces them).
    paired: ``(arm, other arm)`` compared seed by seed, or ``None``.
    budget: the budget and its arithmetic, for the results.
  """

  name: str
  scale: str
  config: str
  settings: Mapping[str, Any]
  arms: tuple[Arm, ...]
  seeds: tuple[int, ...] = (0, 1, 2)
  paired: tuple[str, str] | None = None
  budget: str = ""

  def arm(self, name: str) -> Arm:
    """The arm called ``name`` (KeyError if none)."""
    for a in self.arms:
      if a.name == name:
        return a
    raise KeyError(name)

  @property
  def reference(self) -> Arm | None:
    """The arm whose final density is the others' target, if any."""
    refs = [a for a in self.arms if a.target == REFERENCE]
    return refs[0] if refs else None


def check(study: Study) -> None:
  """Raises ValueError naming the first fault of a study's declaration."""
  where = f"experiments/studies/{study.name}.py"
  names = [a.name for a in study.arms]
  if not names:
    raise ValueError(f"{where}: the study has no arms.")
  for a in study.arms:
    if not _NAME.match(a.name):
      raise ValueError(f"{where}: arm name {a.name!r} must be letters, digits, "
                       "'_', '.' or '-' (it names a directory).")
    if a.target is not None and a.target not in TARGETS:
      raise ValueError(f"{where}: arm {a.name!r} has target {a.target!r}; "
                       f"valid targets are None and {list(TARGETS)}.")
    if a.num_seeds is not None and a.num_seeds < 1:
      raise ValueError(f"{where}: arm {a.name!r}: num_seeds must be >= 1.")
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    raise ValueError(f"{where}: arm names must be unique; repeated: {dupes}.")
  refs = [a.name for a in study.arms if a.target == REFERENCE]
  if len(refs) > 1:
    raise ValueError(f"{where}: only one arm may be the reference; got "
                     f"{refs}.")
  if not refs and any(a.target for a in study.arms):
    raise ValueError(f"{where}: arms with a density target need an arm with "
                     "target='reference'.")
  if study.paired and not set(study.paired) <= set(names):
    raise ValueError(f"{where}: paired arms {list(study.paired)} must be arms "
                     f"of the study ({names}).")
  if not study.seeds:
    raise ValueError(f"{where}: the study has no seeds.")


def names() -> list[str]:
  """The studies that ship: the modules here that define ``get_study``."""
  out = []
  for file in sorted(os.listdir(_DIR)):
    if file.endswith(".py") and not file.startswith("_"):
      with open(os.path.join(_DIR, file)) as f:
        if "def get_study(" in f.read():
          out.append(file[:-3])
  return out


def load(name: str, scale: str = "small") -> Study:
  """The study ``name`` at ``scale``, checked.

  Raises:
    ValueError: an unknown study or scale, or a faulty declaration; the
      message names the value and lists the valid ones.
  """
  known = names()
  if name not in known:
    raise ValueError(
        f"unknown study {name!r}: the studies are {', '.join(known)} "
        "(experiments/studies/<name>.py; pass --study with one of them).")
  module = importlib.import_module(f"experiments.studies.{name}")
  scales = tuple(getattr(module, "SCALES", ("small",)))
  if scale not in scales:
    raise ValueError(
        f"study {name!r} has no scale {scale!r}; its scales are "
        f"{', '.join(scales)} (pass --scale with one of them).")
  study = module.get_study(scale)
  check(study)
  return study
