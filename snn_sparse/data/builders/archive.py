"""Source files that live either in a directory or inside a zip archive.

The official event datasets are published as zip archives that users often
extract; a :class:`Member` names one file in either form, and
:func:`read_member` returns its bytes. Open zip archives are cached per
process, so reading many members costs one open.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import zipfile

_OPEN: dict[str, zipfile.ZipFile] = {}


@dataclasses.dataclass(frozen=True)
class Member:
  """A file: ``path`` itself, or member ``member`` of the zip at ``path``."""

  path: str
  member: str | None = None

  def __str__(self) -> str:
    return self.path if self.member is None else f"{self.path}:{self.member}"


def read_member(file: Member) -> bytes:
  """The bytes of ``file``.

  Raises:
    ValueError: the zip archive is corrupt (names the archive).
  """
  if file.member is None:
    return pathlib.Path(file.path).read_bytes()
  try:
    return _zip(file.path).read(file.member)
  except (zipfile.BadZipFile, KeyError, OSError) as e:
    raise ValueError(f"cannot read {file}: {e}") from e


def is_hidden(name: str) -> bool:
  """Whether ``name`` is a hidden file (``.x``, ``__MACOSX/``), to skip."""
  parts = name.replace("\\", "/").split("/")
  return parts[-1].startswith(".") or "__MACOSX" in parts


def zip_names(path: str | os.PathLike) -> list[str]:
  """The names of the regular, non-hidden files in the zip archive ``path``.

  Raises:
    ValueError: ``path`` is not a readable zip archive.
  """
  try:
    return [i.filename for i in _zip(os.fspath(path)).infolist()
            if not i.is_dir() and not is_hidden(i.filename)]
  except (zipfile.BadZipFile, OSError) as e:
    raise ValueError(f"cannot read zip archive {path}: {e}") from e


def _zip(path: str) -> zipfile.ZipFile:
  if path not in _OPEN:
    _OPEN[path] = zipfile.ZipFile(path)
  return _OPEN[path]
