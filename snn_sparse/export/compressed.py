"""A compressed file of a sparse network: bit-packed masks, active values only.

``save_sparse(params, masks, batch_stats, path, values=...)`` writes one
numpy ``.npz`` archive (uncompressed zip) with two members:

* ``header``: UTF-8 JSON (``uint8``): the format name and version, the value
  format, the tree structure of ``params`` and ``batch_stats`` (whose leaves
  are indices into ``leaves``), whether there are masks, an optional config
  (the model that reads the arrays), the data size, and per leaf its shape,
  dtype, active count (masked kernels) and int8 scales;
* ``data``: one ``uint8`` byte string holding every leaf back to back, in
  the order of ``leaves``: a dense leaf as its raw bytes (C order), a masked
  kernel as its packed mask then its active values.

A masked kernel (a ``params`` leaf with a non-``None`` mask) is stored as its
mask, bit-packed (``numpy.packbits``, little bit order, C order over the
kernel), plus its active values only, in C order. Every other leaf (biases,
BatchNorm parameters and statistics, unmasked kernels) is stored dense in its
own dtype. The active values are stored as

* ``"float32"``: exactly; loading returns bit-identical params;
* ``"float16"``: rounded to the nearest float16 (relative error at most
  ``2**-11`` for normal values);
* ``"int8"``: symmetric per output channel (the last kernel axis):
  ``scale[o] = max |w[..., o]| / 127`` over the active entries,
  ``q = clip(round(w / scale[o]), -127, 127)``, ``w ~= q * scale[o]``; the
  error of every weight is at most ``scale[o] / 2``. The scales (float32) are
  in the header.

Stated tolerance of the loaded model's logits (:data:`LOGIT_TOLERANCE`,
:func:`logit_error`): float32 bit-identical; the mean absolute change of the
time-averaged logits at most 2% (float16) and 10% (int8) of their standard
deviation (``python -m experiments.export --format sparse`` measures it on
the test split).

At connectivity ``c`` a masked kernel of ``n`` float32 weights costs
``4 * c * n + ceil(n / 8)`` bytes: at most ``4c + 1/8`` bytes per weight
plus less than one byte of rounding. Everything in the file besides the
payload (the JSON header, the zip and ``.npy`` headers) is reported as the
header (:func:`size_report`).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from typing import Any, Mapping

import numpy as np

PyTree = Any

FORMAT = "snn_sparse.sparse"
VERSION = 1
VALUE_FORMATS = ("float32", "float16", "int8")
#: The stated tolerance of loaded logits, :func:`logit_error` (float32: 0,
#: the logits are bit-identical). A spike that a rounded weight flips moves
#: a logit by a whole weight, so the bound is on the mean, not the maximum.
LOGIT_TOLERANCE = {"float32": 0.0, "float16": 0.02, "int8": 0.1}
_ZIP_MAGIC = b"PK\x03\x04"
_MEMBERS = ("header", "data")


class SparseFileError(ValueError):
  """A file that is not a readable snn_sparse sparse file; names the file."""


# ----------------------------------------------------------------------------
# Trees: nested dicts of arrays <-> a JSON skeleton plus a list of leaves
# ----------------------------------------------------------------------------
def _skeleton(tree, name: str, leaves: list, keys=()):
  """The JSON structure of a nested dict ``tree``; leaves become indices."""
  if isinstance(tree, Mapping):
    out = {}
    for k, v in tree.items():
      if not isinstance(k, str):
        raise ValueError(f"{name}: keys must be strings; got {k!r} at "
                         f"{'/'.join(keys) or '(root)'}.")
      out[k] = _skeleton(v, name, leaves, keys + (k,))
    return out
  if tree is None:
    return None
  if not hasattr(tree, "shape"):
    raise ValueError(f"{name}/{'/'.join(keys)}: expected an array or a dict "
                     f"of arrays, got {type(tree).__name__}.")
  leaves.append((keys, np.asarray(tree)))
  return len(leaves) - 1


def _rebuild(skeleton, arrays: list):
  if isinstance(skeleton, dict):
    return {k: _rebuild(v, arrays) for k, v in skeleton.items()}
  if skeleton is None:
    return None
  return arrays[skeleton]


def _mask_at(masks, keys):
  """The mask leaf of ``masks`` at ``keys`` (``None`` when absent)."""
  node = masks
  for k in keys:
    if not isinstance(node, Mapping) or k not in node:
      return None
    node = node[k]
  return None if node is None else np.asarray(node)


# ----------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------
def quantize_int8(kernel: np.ndarray, mask: np.ndarray):
  """Per-output-channel symmetric int8 of the active entries of ``kernel``.

  ``kernel`` ``[..., out]`` (float), ``mask`` of the same shape (bool).
  Returns ``(q, scale)``: ``q`` int8 ``[active]`` in C order and ``scale``
  float32 ``[out]`` with ``scale[o] = max |kernel[..., o]| / 127`` over the
  active entries of channel ``o`` (0 for a channel with none, or only zeros;
  its values are then 0). ``q = clip(round(w / scale), -127, 127)``.
  """
  w = np.asarray(kernel, np.float32)
  m = np.asarray(mask, bool)
  amax = np.max(np.where(m, np.abs(w), 0.0), axis=tuple(range(w.ndim - 1)))
  scale = (amax / np.float32(127.0)).astype(np.float32)
  safe = np.where(scale > 0, scale, np.float32(1.0))
  q = np.clip(np.rint(w / safe), -127, 127)
  q = np.where(scale > 0, q, 0).astype(np.int8)
  return q[m], scale


def dequantize_int8(q: np.ndarray, scale: np.ndarray,
                    mask: np.ndarray) -> np.ndarray:
  """The float32 kernel of :func:`quantize_int8`'s ``(q, scale)``, zero off
  ``mask``."""
  out = np.zeros(mask.shape, np.float32)
  channel = np.broadcast_to(np.arange(mask.shape[-1]), mask.shape)[mask]
  out[mask] = q.astype(np.float32) * scale[channel]
  return out


def _encode_values(active: np.ndarray, kernel, mask, values: str, where: str):
  """``(bytes, scales or None)`` of a masked kernel's active values."""
  if values == "float32":
    return active.astype(np.float32).tobytes(), None
  if values == "float16":
    big = np.abs(active) > np.finfo(np.float16).max
    if np.any(big):
      raise ValueError(
          f"{where}: {int(big.sum())} active weights exceed the float16 range "
          f"(max |w| {float(np.abs(active).max()):.4g}); store them with "
          "values='float32' or 'int8'.")
    return active.astype(np.float16).tobytes(), None
  q, scale = quantize_int8(kernel, mask)
  return q.tobytes(), scale


def logit_error(before, after) -> float:
  """Mean ``|after - before|`` of the time-averaged logits ``[T, N, K]``,
  relative to the standard deviation of ``before``'s: what
  :data:`LOGIT_TOLERANCE` bounds."""
  a = np.asarray(before, np.float64).mean(0)
  b = np.asarray(after, np.float64).mean(0)
  return float(np.mean(np.abs(b - a)) / max(float(np.std(a)), 1e-12))


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------
def save_sparse(params: PyTree, masks: PyTree, batch_stats: PyTree, path,
                values: str = "float32", config: dict | None = None) -> dict:
  """Writes ``params``, ``masks`` and ``batch_stats`` to ``path`` compactly.

  Args:
    params: nested dicts of arrays (Flax ``params``); masked kernels hold
      zeros at inactive entries (their values there are not stored).
    masks: ``None`` (dense) or a tree with the structure of ``params``: a
      bool array per masked kernel and ``None`` elsewhere.
    batch_stats: nested dicts of arrays (BatchNorm statistics), may be empty.
    path: the file to write (written to a temporary name, then renamed).
    values: ``"float32"``, ``"float16"`` or ``"int8"``: how the active values
      of masked kernels are stored (see the module docstring).
    config: optional JSON-serialisable dict stored in the header (e.g. the
      model's name and fields), returned by :func:`read_header`.

  Returns:
    :func:`size_report` of the written file.
  """
  if values not in VALUE_FORMATS:
    raise ValueError(f"values={values!r}; choose one of {VALUE_FORMATS}.")
  leaves = []
  trees = {"params": _skeleton(params, "params", leaves)}
  n_params = len(leaves)
  trees["batch_stats"] = _skeleton(batch_stats or {}, "batch_stats", leaves)
  chunks, entries = [], []
  for i, (keys, array) in enumerate(leaves):
    mask = _mask_at(masks, keys) if i < n_params else None
    entry = {"shape": list(array.shape), "dtype": array.dtype.name}
    if mask is None:
      chunks.append(np.ascontiguousarray(array).tobytes())
    else:
      if mask.shape != array.shape or mask.dtype != bool:
        raise ValueError(f"masks/{'/'.join(keys)}: expected a bool mask of "
                         f"shape {array.shape}, got {mask.dtype} "
                         f"{mask.shape}.")
      data, scale = _encode_values(array[mask], array, mask, values,
                                   f"params/{'/'.join(keys)}")
      entry["active"] = int(mask.sum())
      if scale is not None:
        # The shortest decimal that reads back as the same float32.
        entry["scales"] = [float(str(s)) for s in scale]
      chunks += [np.packbits(mask.ravel(), bitorder="little").tobytes(), data]
    entries.append(entry)
  data = b"".join(chunks)
  header = {"format": FORMAT, "version": VERSION, "values": values,
            "masks": None if masks is None else "tree", "trees": trees,
            "leaves": entries, "data_bytes": len(data), "config": config}
  _write_archive(path, header, data)
  return size_report(path)


def _write_archive(path, header: dict, data: bytes) -> None:
  blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
  tmp = f"{path}.tmp"
  with open(tmp, "wb") as f:
    np.savez(f, header=np.frombuffer(blob, np.uint8),
             data=np.frombuffer(data, np.uint8))
  os.replace(tmp, path)


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------
def _fail(path, message: str):
  raise SparseFileError(f"{path}: {message}")


def _read_archive(path) -> tuple[dict, bytes]:
  """The header dict and the data bytes of ``path``; clear errors only."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    _fail(path, f"cannot be read ({e.strerror}).")
  if raw[:4] != _ZIP_MAGIC:
    _fail(path, f"wrong magic bytes {raw[:4]!r}: not an snn_sparse sparse "
          "file (a .npz archive written by snn_sparse.export.save_sparse or "
          "`python -m experiments.export --format sparse`).")
  try:
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
      names = set(archive.files)
      if names != set(_MEMBERS):
        _fail(path, f"holds members {sorted(names)}, not {list(_MEMBERS)}: "
              "wrong magic, not an snn_sparse sparse file.")
      header_bytes = archive["header"].tobytes()
      data = archive["data"].tobytes()
  except SparseFileError:
    raise
  except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
    _fail(path, f"is truncated or corrupt ({type(e).__name__}: {e}). Export "
          "it again.")
  try:
    header = json.loads(header_bytes.decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    _fail(path, f"its header is not valid JSON ({e}); the file is corrupt. "
          "Export it again.")
  if not isinstance(header, dict) or header.get("format") != FORMAT:
    found = header.get("format") if isinstance(header, dict) else None
    _fail(path, f"wrong magic: header format {found!r}, expected {FORMAT!r}.")
  if header.get("version") != VERSION:
    _fail(path, f"format version {header.get('version')!r}; this snn_sparse "
          f"reads version {VERSION}. Export it again with this version.")
  return header, data


def read_header(path) -> dict:
  """The JSON header of an snn_sparse sparse file (see the module docstring).

  ``header["config"]`` is the ``config`` given to :func:`save_sparse`.
  """
  return _read_archive(path)[0]


def _leaf_paths(path, trees) -> dict[int, str]:
  """Leaf index -> ``"params/Conv_0/kernel"``, from the header's trees."""
  out = {}

  def walk(node, prefix):
    if isinstance(node, dict):
      for k, v in node.items():
        walk(v, f"{prefix}/{k}")
    elif isinstance(node, int) and not isinstance(node, bool):
      out[node] = prefix
    elif node is not None:
      _fail(path, f"header field 'trees' holds {node!r} at {prefix}: "
            "corrupt.")

  if not isinstance(trees, dict) or set(trees) != {"params", "batch_stats"}:
    _fail(path, "header field 'trees' must hold 'params' and 'batch_stats'.")
  for name, tree in trees.items():
    walk(tree, name)
  return out


def _layout(path, header: dict, data_len: int) -> list[dict]:
  """Per leaf: where its bytes lie, checked against the header and data.

  Leaves are stored back to back in header order: a dense leaf as
  ``prod(shape) * itemsize`` bytes; a sparse one as ``ceil(n / 8)`` mask
  bytes then ``active * itemsize(values)`` value bytes.
  """
  entries = header.get("leaves")
  if not isinstance(entries, list):
    _fail(path, "header field 'leaves' is missing or not a list.")
  names = _leaf_paths(path, header.get("trees"))
  if sorted(names) != list(range(len(entries))):
    _fail(path, f"header field 'trees' names {len(names)} leaves but "
          f"'leaves' lists {len(entries)}: the header does not match the "
          "arrays.")
  values = header.get("values")
  if values not in VALUE_FORMATS:
    _fail(path, f"header field 'values' is {values!r}, not one of "
          f"{VALUE_FORMATS}.")
  out, offset = [], 0
  for i, e in enumerate(entries):
    where = f"leaves[{i}] ({names[i]})"
    try:
      shape = tuple(int(d) for d in e["shape"])
      dtype = np.dtype(e["dtype"])
    except (KeyError, TypeError, ValueError) as err:
      _fail(path, f"header field {where} is malformed ({err!r}).")
    n = math.prod(shape)
    spec = {"name": names[i], "shape": shape, "dtype": dtype, "n": n,
            "where": where}
    if "active" in e:
      active = e["active"]
      if not isinstance(active, int) or not 0 <= active <= n:
        _fail(path, f"header field {where}.active is {active!r}, not in "
              f"0..{n}.")
      mask_bytes = (n + 7) // 8
      spec.update(active=active, mask=(offset, mask_bytes),
                  values=(offset + mask_bytes,
                          active * np.dtype(values).itemsize),
                  scales=e.get("scales"))
      offset += mask_bytes + spec["values"][1]
    else:
      spec["dense"] = (offset, n * dtype.itemsize)
      offset += n * dtype.itemsize
    out.append(spec)
  if header.get("data_bytes") != data_len or offset != data_len:
    _fail(path, f"the header describes {offset} bytes of arrays "
          f"(data_bytes {header.get('data_bytes')!r}) but the data holds "
          f"{data_len}: the header does not match the arrays.")
  return out


def _decode_leaf(path, data: bytes, spec: dict, values: str):
  """``(array, mask or None)`` of one leaf of :func:`_layout`."""
  shape, dtype, n, where = (spec["shape"], spec["dtype"], spec["n"],
                            spec["where"])
  if "dense" in spec:
    start, size = spec["dense"]
    array = np.frombuffer(data[start:start + size], dtype)
    return array.reshape(shape).copy(), None
  start, size = spec["mask"]
  bits = np.unpackbits(np.frombuffer(data[start:start + size], np.uint8),
                       bitorder="little")
  if bits[n:].any():
    _fail(path, f"{where}: mask bits are set past its {n} weights: corrupt.")
  mask = bits[:n].astype(bool).reshape(shape)
  if int(mask.sum()) != spec["active"]:
    _fail(path, f"header field {where}.active is {spec['active']} but the "
          f"mask has {int(mask.sum())} active weights: the header does not "
          "match the arrays.")
  start, size = spec["values"]
  stored = np.frombuffer(data[start:start + size], np.dtype(values))
  if values == "int8":
    scales = spec["scales"]
    if (not isinstance(scales, list) or len(shape) < 1
        or len(scales) != shape[-1]):
      _fail(path, f"header field {where}.scales must list "
            f"{shape[-1] if shape else 0} per-output-channel scales: the "
            "header does not match the arrays.")
    dense = dequantize_int8(stored, np.asarray(scales, np.float32), mask)
  else:
    dense = np.zeros(shape, np.float32)
    dense[mask] = stored.astype(np.float32)
  return dense.astype(dtype), mask


def load_sparse(path) -> tuple[PyTree, PyTree, PyTree]:
  """Reads a file of :func:`save_sparse`: ``(params, masks, batch_stats)``.

  Masked kernels come back dense, with exact zeros at inactive entries (for
  ``"float32"`` values every array is bit-identical to what was saved);
  ``masks`` has the structure of ``params`` (``None`` when saved dense).
  Arrays are numpy arrays. A truncated or corrupt file, a wrong magic, or a
  header that does not match the arrays raise one :class:`SparseFileError`
  that names the file.
  """
  header, data = _read_archive(path)
  decoded = [_decode_leaf(path, data, spec, header["values"])
             for spec in _layout(path, header, len(data))]
  trees = header["trees"]
  params = _rebuild(trees["params"], [a for a, _ in decoded])
  batch_stats = _rebuild(trees["batch_stats"], [a for a, _ in decoded])
  masks = (None if header.get("masks") is None
           else _rebuild(trees["params"], [m for _, m in decoded]))
  return params, masks, batch_stats


# ----------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------
def size_report(path) -> dict:
  """Bytes of a sparse file against the dense float32 parameter bytes.

  Returns ``{"file", "values", "layers": [...], "other", "header_bytes",
  "file_bytes", "dense_fp32_bytes", "ratio"}``. Each entry of ``layers`` is
  a masked kernel: ``path``, ``weights`` (n), ``active``, ``connectivity``
  (c), ``dense_fp32_bytes`` (4n), ``stored_bytes`` (mask plus values) and
  ``bound_bytes`` (``4 c n + ceil(n / 8)``, what float32 values take).
  ``other`` sums every leaf stored dense (params and BatchNorm statistics).
  ``header_bytes`` is the file size minus all leaves' bytes (the JSON
  header with its int8 scales, and the zip and ``.npy`` headers).
  ``dense_fp32_bytes`` is every leaf of params and batch stats at 4 bytes
  per number.
  """
  header, data = _read_archive(path)
  layers, other_dense, other_stored = [], 0, 0
  for spec in _layout(path, header, len(data)):
    n = spec["n"]
    if "dense" in spec:
      other_dense += 4 * n
      other_stored += spec["dense"][1]
      continue
    layers.append({
        "path": spec["name"], "weights": n, "active": spec["active"],
        "connectivity": spec["active"] / max(n, 1),
        "dense_fp32_bytes": 4 * n,
        "stored_bytes": spec["mask"][1] + spec["values"][1],
        "bound_bytes": 4 * spec["active"] + (n + 7) // 8})
  file_bytes = os.path.getsize(path)
  dense = sum(l["dense_fp32_bytes"] for l in layers) + other_dense
  return {"file": os.fspath(path), "values": header["values"],
          "layers": layers,
          "other": {"dense_fp32_bytes": other_dense,
                    "stored_bytes": other_stored},
          "header_bytes": file_bytes - len(data), "file_bytes": file_bytes,
          "dense_fp32_bytes": dense, "ratio": file_bytes / max(dense, 1)}


def format_size_report(report: dict) -> str:
  """:func:`size_report` as a table: per masked kernel, other leaves, header
  and total, with the stored bytes against the dense float32 bytes."""
  rows = [("layer", "weights", "conn.", "dense fp32 B", "stored B", "ratio")]
  for l in report["layers"]:
    rows.append((l["path"], f"{l['weights']:,}", f"{l['connectivity']:.3f}",
                 f"{l['dense_fp32_bytes']:,}", f"{l['stored_bytes']:,}",
                 f"{l['stored_bytes'] / max(l['dense_fp32_bytes'], 1):.3f}"))
  o = report["other"]
  rows.append(("other leaves (dense)", "", "", f"{o['dense_fp32_bytes']:,}",
               f"{o['stored_bytes']:,}",
               f"{o['stored_bytes'] / max(o['dense_fp32_bytes'], 1):.3f}"))
  rows.append(("header", "", "", "0", f"{report['header_bytes']:,}", ""))
  rows.append((f"total ({report['values']})", "", "",
               f"{report['dense_fp32_bytes']:,}",
               f"{report['file_bytes']:,}", f"{report['ratio']:.3f}"))
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths)))
                   for r in rows)
