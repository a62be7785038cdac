"""snn_sparse.export.compressed: bytes on disk, the round trip, bad files."""

import io
import json
import math
import os
import zipfile

import numpy as np
import pytest

from snn_sparse.export import compressed

import export_models


def _tree():
  """A small params/masks/batch_stats triple with hand-picked values."""
  kernel = np.array([[0.5, 0.0, -2.0],
                     [0.0, 0.0, 1.25]], np.float32)
  mask = np.array([[True, False, True],
                   [False, False, True]])
  params = {"Dense_0": {"kernel": kernel,
                        "bias": np.array([0.1, 0.2, 0.3], np.float32)},
            "BN": {"scale": np.array([1.5], np.float32)}}
  masks = {"Dense_0": {"kernel": mask, "bias": None}, "BN": {"scale": None}}
  stats = {"BN": {"mean": np.array([-1.0], np.float32)}}
  return params, masks, stats


def _members(path):
  with np.load(path) as f:
    return json.loads(f["header"].tobytes()), f["data"].tobytes()


def test_layout_on_disk_is_packed_mask_then_active_values(tmp_path):
  params, masks, stats = _tree()
  path = tmp_path / "m.npz"
  compressed.save_sparse(params, masks, stats, path)
  header, data = _members(path)
  # Leaves in the dicts' order: Dense_0/kernel, Dense_0/bias, BN/scale,
  # then batch_stats' BN/mean.
  assert [e.get("active") for e in header["leaves"]] == [3, None, None, None]
  # C-order mask bits 1,0,1,0,0,1, little bit order: 1 + 4 + 32 = 37.
  expected = (bytes([37])
              + np.array([0.5, -2.0, 1.25], np.float32).tobytes()
              + np.array([0.1, 0.2, 0.3], np.float32).tobytes()
              + np.float32(1.5).tobytes()
              + np.float32(-1.0).tobytes())
  assert data == expected
  assert header["data_bytes"] == len(expected) == 1 + 12 + 12 + 4 + 4


def test_float32_round_trip_is_bit_identical(tmp_path):
  params, masks, stats = _tree()
  path = tmp_path / "m.npz"
  compressed.save_sparse(params, masks, stats, path, config={"model": "x"})
  p, m, s = compressed.load_sparse(path)
  assert p["Dense_0"]["kernel"].tobytes() == params["Dense_0"][
      "kernel"].tobytes()
  np.testing.assert_array_equal(m["Dense_0"]["kernel"],
                                masks["Dense_0"]["kernel"])
  assert m["Dense_0"]["bias"] is None and m["BN"]["scale"] is None
  assert s["BN"]["mean"].tobytes() == stats["BN"]["mean"].tobytes()
  assert compressed.read_header(path)["config"] == {"model": "x"}
  # masks=None: every leaf dense, no masks back.
  compressed.save_sparse(params, None, {}, path)
  p, m, s = compressed.load_sparse(path)
  assert m is None and s == {}
  np.testing.assert_array_equal(p["Dense_0"]["kernel"],
                                params["Dense_0"]["kernel"])


def test_int8_per_output_channel_hand_computed():
  kernel = np.array([[0.5, -2.0],
                     [1.0, 0.75]], np.float32)
  mask = np.array([[True, True],
                   [True, False]])
  q, scale = compressed.quantize_int8(kernel, mask)
  # Channel 0: max |w| over 0.5 and 1.0 is 1.0; channel 1: only -2.0 (0.75
  # is inactive).
  np.testing.assert_array_equal(scale, np.float32([1.0 / 127, 2.0 / 127]))
  # C order: (0,0)=0.5 -> round(63.5)=64 (half to even), (0,1)=-2 -> -127,
  # (1,0)=1 -> 127.
  np.testing.assert_array_equal(q, np.int8([64, -127, 127]))
  back = compressed.dequantize_int8(q, scale, mask)
  np.testing.assert_allclose(back, [[64 / 127, -2.0], [1.0, 0.0]],
                             rtol=1e-6)
  assert np.all(np.abs(back - kernel * mask) <= scale / 2 + 1e-7)


def test_int8_channel_without_active_weights_is_zero():
  q, scale = compressed.quantize_int8(np.ones((2, 2), np.float32),
                                      np.array([[True, False],
                                                [True, False]]))
  assert scale[1] == 0 and list(q) == [127, 127]


def test_quantised_values_are_within_their_error_bounds(tmp_path):
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(3, 3, 4, 6)).astype(np.float32)
  mask = rng.random(kernel.shape) < 0.3
  kernel = kernel * mask
  params, masks = {"k": kernel}, {"k": mask}
  for values in ("float16", "int8"):
    path = tmp_path / f"{values}.npz"
    compressed.save_sparse(params, masks, {}, path, values=values)
    p, m, _ = compressed.load_sparse(path)
    np.testing.assert_array_equal(m["k"], mask)
    assert not np.any(p["k"][~mask])
    err = np.abs(p["k"] - kernel)
    if values == "float16":
      assert np.all(err <= np.abs(kernel) * 2.0**-11)
    else:
      scale = np.max(np.abs(kernel), axis=(0, 1, 2)) / 127
      assert np.all(err <= scale / 2 + 1e-7)
      assert np.any(err > 0)
    assert compressed.read_header(path)["values"] == values


def test_float16_refuses_values_out_of_its_range(tmp_path):
  with pytest.raises(ValueError, match="params/k: 1 active weights exceed"):
    compressed.save_sparse({"k": np.float32([[1e6]])},
                           {"k": np.array([[True]])}, {},
                           tmp_path / "m.npz", values="float16")


def test_size_bound_per_prunable_weight(tmp_path):
  """fp32 values: at most 4c + 1/8 bytes per prunable weight, plus header."""
  rng = np.random.default_rng(1)
  params, masks = {}, {}
  for i, n_in in enumerate((300, 77, 1000)):
    mask = np.zeros(n_in * 8, bool)
    mask[rng.permutation(mask.size)[:int(0.3 * mask.size)]] = True
    mask = mask.reshape(n_in, 8)
    params[f"Dense_{i}"] = {"kernel": rng.normal(size=mask.shape).astype(
        np.float32) * mask, "bias": np.zeros(8, np.float32)}
    masks[f"Dense_{i}"] = {"kernel": mask, "bias": None}
  path = tmp_path / "m.npz"
  report = compressed.save_sparse(params, masks, {}, path)
  header, _ = _members(path)
  n = sum(l["weights"] for l in report["layers"])
  c = sum(l["active"] for l in report["layers"]) / n
  for layer in report["layers"]:
    k = layer["weights"]
    assert layer["stored_bytes"] == 4 * layer["active"] + math.ceil(k / 8)
  payload = sum(l["stored_bytes"] for l in report["layers"])
  assert payload <= (4 * c + 1 / 8) * n + len(report["layers"])
  other = report["other"]["stored_bytes"]
  assert other == 3 * 8 * 4
  assert report["file_bytes"] == payload + other + report["header_bytes"]
  # The header: the JSON plus the zip and .npy headers of two members.
  json_bytes = len(json.dumps(header, separators=(",", ":")))
  assert json_bytes < report["header_bytes"] < json_bytes + 1024
  assert report["file_bytes"] == os.path.getsize(path)
  assert report["dense_fp32_bytes"] == 4 * n + other
  table = compressed.format_size_report(report)
  assert "params/Dense_2/kernel" in table and "total (float32)" in table


def test_logits_of_a_trained_model_round_trip(tmp_path):
  """float32: bit-identical logits; float16 and int8 within the stated
  tolerance."""
  model, variables, masks = export_models.trained(
      "convnet", features=(8, 16), hidden=32, pooling="avg", steps=60)
  x, _ = export_models.digits_test(120)
  before = np.asarray(model.apply(variables, x, train=False))
  for values in compressed.VALUE_FORMATS:
    path = tmp_path / f"{values}.npz"
    compressed.save_sparse(variables["params"], masks,
                           variables["batch_stats"], path, values=values)
    params, loaded_masks, stats = compressed.load_sparse(path)
    after = np.asarray(model.apply({"params": params, "batch_stats": stats},
                                   x, train=False))
    if values == "float32":
      assert before.tobytes() == after.tobytes()
    else:
      assert not np.array_equal(before, after)
      error = compressed.logit_error(before, after)
      assert error <= compressed.LOGIT_TOLERANCE[values], (values, error)


def test_logit_error_hand_computed():
  before = np.array([[[1.0, 3.0]], [[3.0, 1.0]]])   # time mean [[2, 2]]
  before = np.concatenate([before, before + [[[2.0, 0.0]]]], axis=1)
  # time means: [[2, 2], [4, 2]]: std 0.866..; after adds 0.5 to one entry.
  after = before.copy()
  after[:, 0, 0] += 0.5
  expected = (0.5 / 4) / np.std([2.0, 2.0, 4.0, 2.0])
  assert compressed.logit_error(before, after) == pytest.approx(expected)


# ----------------------------------------------------------------------------
# Bad files: one clear error that names the file.
# ----------------------------------------------------------------------------
@pytest.fixture(name="good")
def _good(tmp_path):
  path = tmp_path / "good.npz"
  compressed.save_sparse(*_tree(), path)
  return path


def test_truncated_file(good, tmp_path):
  raw = good.read_bytes()
  bad = tmp_path / "cut.npz"
  bad.write_bytes(raw[:len(raw) // 2])
  with pytest.raises(compressed.SparseFileError,
                     match=f"{bad}: is truncated or corrupt"):
    compressed.load_sparse(bad)


def test_wrong_magic(tmp_path):
  bad = tmp_path / "notes.txt"
  bad.write_bytes(b"hello world")
  with pytest.raises(compressed.SparseFileError,
                     match=f"{bad}: wrong magic bytes b'hell'"):
    compressed.load_sparse(bad)
  other = tmp_path / "other.npz"
  np.savez(other, weights=np.zeros(3))
  with pytest.raises(compressed.SparseFileError, match="wrong magic"):
    compressed.load_sparse(other)
  header, data = _members_of_tree(tmp_path)
  header["format"] = "something.else"
  wrong = tmp_path / "wrong.npz"
  compressed._write_archive(wrong, header, data)  # pylint: disable=protected-access
  with pytest.raises(compressed.SparseFileError,
                     match="wrong magic: header format 'something.else'"):
    compressed.load_sparse(wrong)


def _members_of_tree(tmp_path):
  path = tmp_path / "t.npz"
  compressed.save_sparse(*_tree(), path)
  return _members(path)


@pytest.mark.parametrize("edit,message", [
    # One value fewer, one bias more: the sizes add up, the mask does not.
    (lambda h: (h["leaves"][0].update(active=2),
                h["leaves"][1].update(shape=[4])),
     r"leaves\[0\] \(params/Dense_0/kernel\).active is 2 but the mask has 3"),
    (lambda h: h["leaves"][0].update(active=7),
     r"leaves\[0\] \(params/Dense_0/kernel\).active is 7, not in 0..6"),
    (lambda h: h["leaves"][1].update(shape=[4]),
     "the header describes 37 bytes of arrays"),
    (lambda h: h.update(data_bytes=99), "data_bytes 99"),
    (lambda h: h["leaves"].pop(), "names 4 leaves but 'leaves' lists 3"),
    (lambda h: h.update(version=7), "format version 7"),
])
def test_header_that_does_not_match_the_arrays(tmp_path, edit, message):
  header, data = _members_of_tree(tmp_path)
  edit(header)
  bad = tmp_path / "bad.npz"
  compressed._write_archive(bad, header, data)  # pylint: disable=protected-access
  with pytest.raises(compressed.SparseFileError, match=message) as e:
    compressed.load_sparse(bad)
  assert str(e.value).startswith(str(bad))


def test_int8_scales_must_match_the_kernel(tmp_path):
  path = tmp_path / "q.npz"
  compressed.save_sparse(*_tree(), path, values="int8")
  header, data = _members(path)
  header["leaves"][0]["scales"] = header["leaves"][0]["scales"][:2]
  compressed._write_archive(path, header, data)  # pylint: disable=protected-access
  with pytest.raises(compressed.SparseFileError, match="3 per-output-channel"):
    compressed.load_sparse(path)


def test_flipped_data_byte_fails_the_zip_checksum(good, tmp_path):
  raw = bytearray(good.read_bytes())
  with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
    info = z.getinfo("data.npy")
  # The last byte of the stored data member (past its .npy header).
  at = info.header_offset + 30 + len(info.filename) + info.compress_size - 1
  raw[at] ^= 0xFF
  bad = tmp_path / "flip.npz"
  bad.write_bytes(bytes(raw))
  with pytest.raises(compressed.SparseFileError,
                     match=f"{bad}: is truncated or corrupt"):
    compressed.load_sparse(bad)


def test_missing_file_names_it(tmp_path):
  with pytest.raises(compressed.SparseFileError, match="nothing.npz"):
    compressed.load_sparse(tmp_path / "nothing.npz")
