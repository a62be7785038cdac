"""Shared helpers for the dataset builders: data dirs, errors, downloads.

This module imports neither TensorFlow nor TFDS, so the pipeline can name
data directories and raise :class:`DataNotFoundError` cheaply.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence

#: Environment variable that overrides the default data directory.
DATA_DIR_ENV = "SNN_SPARSE_DATA_DIR"
#: Set to ``1`` to never try a download (missing data then fails at once).
NO_DOWNLOAD_ENV = "SNN_SPARSE_NO_DOWNLOAD"
#: Seconds allowed for resolving a host name before a download is given up.
RESOLVE_TIMEOUT = 3.0
#: Socket timeout (seconds) for connecting and for each read of a download.
DOWNLOAD_TIMEOUT = 10.0


class DataNotFoundError(FileNotFoundError):
  """The source files of a dataset are missing and could not be downloaded."""


class DownloadError(OSError):
  """A download failed (no network, timeout, bad HTTP status, ...)."""


def default_data_dir() -> str:
  """``$SNN_SPARSE_DATA_DIR`` if set, else ``~/tensorflow_datasets``."""
  env = os.environ.get(DATA_DIR_ENV)
  if env:
    return os.path.expanduser(env)
  return os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def resolve_data_dir(data_dir: str | os.PathLike | None) -> pathlib.Path:
  """Returns ``data_dir`` as an absolute path, or the default data dir."""
  return pathlib.Path(data_dir or default_data_dir()).expanduser().absolute()


def default_manual_dir(data_dir: str | os.PathLike | None) -> pathlib.Path:
  """``<data_dir>/downloads/manual``: TFDS's default home for source files.

  Downloaded source files are saved there too, so they are found next time.
  """
  return resolve_data_dir(data_dir) / "downloads" / "manual"


def search_dirs(manual_dir: str | os.PathLike | None,
                data_dir: str | os.PathLike | None,
                extra: Sequence[str | os.PathLike] = ()) -> list[pathlib.Path]:
  """The directories searched for source files, in order, without repeats.

  Order: the explicit ``manual_dir``, ``<data_dir>/downloads/manual``, then
  ``extra`` (for example a system-wide directory from a Debian package).
  """
  out: list[pathlib.Path] = []
  candidates = [manual_dir, default_manual_dir(data_dir), *extra]
  for d in candidates:
    if d is None:
      continue
    p = pathlib.Path(d).expanduser().absolute()
    if p not in out:
      out.append(p)
  return out


def find_file(dirs: Iterable[pathlib.Path],
              names: Sequence[str]) -> pathlib.Path | None:
  """The first existing ``dir/name``, dirs in the outer loop; else ``None``."""
  for d in dirs:
    for name in names:
      p = d / name
      if p.exists():
        return p
  return None


def downloads_disabled() -> bool:
  """Whether ``$SNN_SPARSE_NO_DOWNLOAD`` forbids network access."""
  return os.environ.get(NO_DOWNLOAD_ENV, "").strip().lower() in (
      "1", "true", "yes")


def _resolve_host(host: str, port: int, timeout: float) -> None:
  """Resolves ``host`` within ``timeout`` seconds or raises DownloadError.

  ``socket.getaddrinfo`` ignores socket timeouts, and a broken resolver can
  block for a long time, so the look-up runs in a daemon thread.
  """
  result: list[BaseException | None] = []

  def target():
    try:
      socket.getaddrinfo(host, port)
      result.append(None)
    except BaseException as e:  # pylint: disable=broad-except
      result.append(e)

  t = threading.Thread(target=target, daemon=True)
  t.start()
  t.join(timeout)
  if not result:
    raise DownloadError(f"cannot resolve {host} within {timeout:.0f} s")
  if result[0] is not None:
    raise DownloadError(f"cannot resolve {host}: {result[0]}")


def download(url: str, dest: str | os.PathLike, *,
             timeout: float = DOWNLOAD_TIMEOUT) -> pathlib.Path:
  """Downloads ``url`` to ``dest`` once, failing fast without a network.

  The host name must resolve within :data:`RESOLVE_TIMEOUT` seconds and every
  socket operation must finish within ``timeout`` seconds; there are no
  retries. The file is written to ``dest + '.part'`` and renamed when
  complete, so a failed download never leaves a truncated ``dest``.

  Raises:
    DownloadError: on any failure, with the reason.
  """
  dest = pathlib.Path(dest)
  if downloads_disabled():
    raise DownloadError(f"downloads are disabled by ${NO_DOWNLOAD_ENV}")
  parsed = urllib.parse.urlparse(url)
  port = parsed.port or (443 if parsed.scheme == "https" else 80)
  _resolve_host(parsed.hostname or "", port, RESOLVE_TIMEOUT)
  dest.parent.mkdir(parents=True, exist_ok=True)
  part = dest.with_name(dest.name + ".part")
  try:
    with (urllib.request.urlopen(url, timeout=timeout) as response,
          open(part, "wb") as f):
      shutil.copyfileobj(response, f, length=1 << 20)
    os.replace(part, dest)
  except (OSError, ValueError) as e:
    part.unlink(missing_ok=True)
    raise DownloadError(f"download of {url} failed: {e}") from e
  return dest
