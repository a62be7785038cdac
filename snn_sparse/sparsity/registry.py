"""Algorithms by name: the built-in ones and any registered from user code.

A factory is any callable ``factory(*, total_steps=None,
steps_per_iteration=None, **fields) -> SparsityAlgorithm``. After
``register("my_dst", factory)``, both ``sparsity.create("my_dst", ...)`` and
``--config.sparsity.algorithm=my_dst`` build it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import ml_collections

from snn_sparse.sparsity import algorithms
from snn_sparse.sparsity.core import SparsityAlgorithm

Factory = Callable[..., SparsityAlgorithm]

_FACTORIES: dict[str, Factory] = dict(algorithms.FACTORIES)


def register(name: str, factory: Factory, *, replace: bool = False) -> None:
  """Adds ``factory`` under ``name``; ``replace=True`` may overwrite one."""
  if not isinstance(name, str) or not name:
    raise ValueError(f"An algorithm name must be a non-empty string; got "
                     f"{name!r}.")
  if not callable(factory):
    raise ValueError(f"register({name!r}, ...): the factory must be "
                     f"callable; got {factory!r}.")
  if name in _FACTORIES and not replace:
    raise ValueError(f"An algorithm named {name!r} is already registered; "
                     "pass replace=True to overwrite it.")
  _FACTORIES[name] = factory


def names() -> tuple[str, ...]:
  """The registered algorithm names, built-in ones first."""
  return tuple(_FACTORIES)


def create(name: str, *, total_steps: int | None = None,
           steps_per_iteration: int | None = None,
           **fields: Any) -> SparsityAlgorithm:
  """The algorithm ``name``, built from keyword ``fields``.

  Args:
    name: a registered name (:func:`names`).
    total_steps: the run's optimizer steps (derives ``rewire_end`` where an
      end is needed).
    steps_per_iteration: the two-stage loop's iteration length; ``None``:
      no iterations.
    **fields: fields of ``sparsity.default_sparsity_config()``; missing
      ones take the algorithm's defaults.

  Raises:
    ValueError: for an unknown name (listing the registered ones) or a bad
      field (naming it).
  """
  if name not in _FACTORIES:
    raise ValueError(f"sparsity.algorithm: must be one of {list(names())}, "
                     f"got {name!r}.")
  return _FACTORIES[name](total_steps=total_steps,
                          steps_per_iteration=steps_per_iteration, **fields)


def from_config(config: ml_collections.ConfigDict | Mapping[str, Any] | None,
                *, total_steps: int | None = None,
                steps_per_iteration: int | None = None) -> SparsityAlgorithm:
  """The algorithm of a ``sparsity`` config section (``algorithm`` + fields).

  Fields left at ``None`` take the algorithm's defaults, so that a command
  line override still wins.
  """
  if config is None:
    given = {}
  elif isinstance(config, (ml_collections.ConfigDict, Mapping)):
    given = dict(config.items())
  else:
    raise ValueError(f"sparsity: expected a ConfigDict or dict, got "
                     f"{type(config).__name__}.")
  name = given.pop("algorithm", "pq_dst")
  return create(name, total_steps=total_steps,
                steps_per_iteration=steps_per_iteration, **given)
