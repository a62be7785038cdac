"""Tests of snn_sparse.data: builders, round trips, order, resume, shards."""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import pickle
import re
import sys
import tarfile
import time

import numpy as np
import pytest

from snn_sparse import data
from snn_sparse.data import augment as augment_lib
from snn_sparse.data import catalog
from snn_sparse.data import ordering
from snn_sparse.data import pipeline
from snn_sparse.data import storage
from snn_sparse.data.builders import cifar_common
from snn_sparse.data.builders import common
from snn_sparse.data.builders import fashion_mnist

FASHION_SYSTEM_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------
# Fake source files.
# ----------------------------------------------------------------------------


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(payload)
  tar.addfile(info, io.BytesIO(payload))


def _fake_cifar(directory: pathlib.Path, variant: str, fmt: str,
                sizes=(4, 4, 4, 4, 4, 6), seed: int = 0) -> dict:
  """Writes a tiny official-format CIFAR tarball; returns the true arrays.

  ``sizes`` are the images per train batch file then the test size (CIFAR-100
  has one train file: their sum is used).
  """
  rng = np.random.default_rng(seed)
  layout = {"cifar10": cifar_common.CIFAR10,
            "cifar100": cifar_common.CIFAR100}[variant]
  classes = 10 if variant == "cifar10" else 100
  train_files = (layout.python_files if fmt == "python"
                 else layout.binary_files)["train"]
  if len(train_files) == 1:
    train_sizes = [sum(sizes[:-1])]
  else:
    train_sizes = list(sizes[:-1])
  truth = {}
  members = {}
  for split, names, counts in (("train", train_files, train_sizes),
                               ("test", None, [sizes[-1]])):
    if names is None:
      names = (layout.python_files if fmt == "python"
               else layout.binary_files)["test"]
    rows, fine, coarse = [], [], []
    for name, n in zip(names, counts):
      chw = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
      y = rng.integers(0, classes, n)
      yc = rng.integers(0, 20, n)
      rows.append(chw)
      fine.append(y)
      coarse.append(yc)
      flat = chw.reshape(n, 3072)
      if fmt == "python":
        if variant == "cifar10":
          obj = {b"batch_label": name.encode(), b"labels": y.tolist(),
                 b"data": flat,
                 b"filenames": [b"img%d.png" % i for i in range(n)]}
        else:
          obj = {b"fine_labels": y.tolist(), b"coarse_labels": yc.tolist(),
                 b"data": flat}
        members[f"{layout.python_dir}/{name}"] = pickle.dumps(obj, protocol=2)
      else:
        if variant == "cifar10":
          head = y[:, None].astype(np.uint8)
        else:
          head = np.stack([yc, y], 1).astype(np.uint8)
        members[f"{layout.binary_dir}/{name}"] = np.concatenate(
            [head, flat], 1).tobytes()
    chw = np.concatenate(rows)
    truth[split] = {
        "chw": chw,
        "image": chw.transpose(0, 2, 3, 1),
        "label": np.concatenate(fine),
        "coarse_label": np.concatenate(coarse),
    }
  directory.mkdir(parents=True, exist_ok=True)
  tar_name = layout.python_tar if fmt == "python" else layout.binary_tar
  with tarfile.open(directory / tar_name, "w:gz") as tar:
    for name, payload in members.items():
      _add_member(tar, name, payload)
  return truth


def _write_idx(path: pathlib.Path, array: np.ndarray, compress: bool) -> None:
  header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(
      array.shape, ">i4").tobytes()
  payload = header + np.ascontiguousarray(array, np.uint8).tobytes()
  if compress:
    with gzip.open(str(path) + ".gz", "wb") as f:
      f.write(payload)
  else:
    path.write_bytes(payload)


def _fake_fashion(directory: pathlib.Path, n_train=7, n_test=3) -> dict:
  rng = np.random.default_rng(1)
  directory.mkdir(parents=True, exist_ok=True)
  truth = {}
  for split, n, prefix in (("train", n_train, "train"),
                           ("test", n_test, "t10k")):
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    _write_idx(directory / f"{prefix}-images-idx3-ubyte", x, compress=True)
    # One file uncompressed: both spellings are accepted.
    _write_idx(directory / f"{prefix}-labels-idx1-ubyte", y,
               compress=split == "train")
    truth[split] = {"image": x[..., None], "label": y.astype(np.int64)}
  return truth


def _read_all(name: str, data_dir, split: str) -> dict:
  source = data.data_sources(name, data_dir=data_dir)[split]
  records = source.__getitems__(list(range(len(source))))
  return {k: np.stack([np.asarray(r[k]) for r in records])
          for k in records[0]}


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("digits_data")


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
  """A data dir with a tiny CIFAR-10 built: 20 train and 6 test images."""
  root = tmp_path_factory.mktemp("cifar_data")
  truth = _fake_cifar(root / "manual", "cifar10", "python")
  data.prepare("cifar10", data_dir=root, manual_dir=root / "manual")
  return root, truth


# ----------------------------------------------------------------------------
# Static info.
# ----------------------------------------------------------------------------


def test_dataset_info_and_steps():
  info = data.dataset_info("cifar10")
  assert info.input_shape == (32, 32, 3)
  assert (info.num_train, info.num_test, info.num_classes) == (50000, 10000,
                                                                10)
  assert len(info.mean) == len(info.std) == 3
  assert data.dataset_info("CIFAR100").num_classes == 100
  assert data.dataset_info("digits").input_shape == (8, 8, 1)
  assert data.dataset_info("fashion_mnist").num_train == 60000
  assert data.steps_per_epoch("cifar10", 128) == 390
  assert data.steps_per_epoch("cifar10", 64, process_count=2) == 390
  assert data.steps_per_epoch("digits", 64) == 22
  assert data.num_eval_batches("digits", 128) == 3
  with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
    data.dataset_info("mnist")
  with pytest.raises(ValueError, match="batch_size"):
    data.steps_per_epoch("digits", 0)
  with pytest.raises(ValueError, match="exceeds"):
    data.steps_per_epoch("digits", 2000)


def test_pipeline_reexports_the_moved_names():
  homes = {catalog: ["DATASETS", "DatasetInfo", "dataset_info"],
           ordering: ["VALIDATION_SEED", "epoch_permutation",
                      "num_eval_batches", "split_indices", "split_sizes",
                      "steps_per_epoch", "train_batch_indices"],
           storage: ["data_sources", "prepare"]}
  for module, names in homes.items():
    for name in names:
      assert getattr(pipeline, name) is getattr(module, name), name
      if name in data.__all__:
        assert getattr(data, name) is getattr(module, name), name


# ----------------------------------------------------------------------------
# Builders: round trips.
# ----------------------------------------------------------------------------


def _documented_digits_split():
  """The split as the builder documents it, computed here independently."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  raw = load_digits()
  x = (raw.images / 16.0).astype(np.float32)[..., None]
  order = np.random.default_rng(0).permutation(len(raw.target))
  test, train = order[:360], order[360:]
  return x[train], raw.target[train], x[test], raw.target[test]


def test_digits_builds_offline_with_the_documented_split(digits_dir):
  sources = data.data_sources("digits", data_dir=digits_dir)
  assert (len(sources["train"]), len(sources["test"])) == (1437, 360)
  x_train, y_train, x_test, y_test = _documented_digits_split()
  for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
    got = _read_all("digits", digits_dir, split)
    assert got["image"].dtype == np.uint8 and got["image"].max() <= 16
    assert set(np.unique(got["label"])) <= set(range(10))
    np.testing.assert_array_equal(got["image"] / np.float32(16), x)
    np.testing.assert_array_equal(got["label"], y)
  # The documented normalisation constants are the train split's statistics.
  info = data.dataset_info("digits")
  np.testing.assert_allclose(info.mean, [x_train.mean()], atol=1e-6)
  np.testing.assert_allclose(info.std, [x_train.std()], atol=1e-6)
  # A second use reuses the build.
  assert (digits_dir / "snn_digits" / "1.0.0" / "dataset_info.json").exists()
  builder = data.prepare("digits", data_dir=digits_dir)
  assert builder.is_prepared()


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_cifar_round_trip(tmp_path, variant, fmt):
  truth = _fake_cifar(tmp_path / "manual", variant, fmt,
                      seed=len(variant) + len(fmt))
  data.prepare(variant, data_dir=tmp_path / "data",
               manual_dir=tmp_path / "manual")
  for split in ("train", "test"):
    got = _read_all(variant, tmp_path / "data", split)
    want = truth[split]
    assert got["image"].shape == want["image"].shape
    np.testing.assert_array_equal(got["image"], want["image"])
    np.testing.assert_array_equal(got["label"], want["label"])
    if variant == "cifar100":
      np.testing.assert_array_equal(got["coarse_label"], want["coarse_label"])
    # CHW -> HWC by hand: flat byte c*1024 + r*32 + col is pixel [r, col, c].
    flat = want["chw"].reshape(len(want["chw"]), -1)
    assert got["image"][1, 2, 5, 0] == flat[1, 0 * 1024 + 2 * 32 + 5]
    assert got["image"][1, 30, 7, 2] == flat[1, 2 * 1024 + 30 * 32 + 7]


def test_cifar_extracted_directory(tmp_path):
  truth = _fake_cifar(tmp_path / "src", "cifar10", "binary")
  with tarfile.open(tmp_path / "src" / "cifar-10-binary.tar.gz") as tar:
    tar.extractall(tmp_path / "manual", filter="data")
  data.prepare("cifar10", data_dir=tmp_path / "data",
               manual_dir=tmp_path / "manual")
  got = _read_all("cifar10", tmp_path / "data", "test")
  np.testing.assert_array_equal(got["image"], truth["test"]["image"])


def test_cifar_python_pickle_is_restricted(tmp_path):
  layout = cifar_common.CIFAR10
  top = tmp_path / layout.python_dir
  top.mkdir()
  # A pickle that would call a function on load must be refused.
  (top / "data_batch_1").write_bytes(pickle.dumps({"data": os.getcwd}))
  for name in ["data_batch_2", "data_batch_3", "data_batch_4",
               "data_batch_5", "test_batch"]:
    (top / name).write_bytes(b"")
  with pytest.raises(ValueError, match="refusing to load"):
    cifar_common.read_python(layout, cifar_common.CifarSource(top, "python"),
                             {"label": "labels"})


def test_fashion_mnist_round_trip(tmp_path):
  truth = _fake_fashion(tmp_path / "manual")
  data.prepare("fashion_mnist", data_dir=tmp_path / "data",
               manual_dir=tmp_path / "manual")
  for split in ("train", "test"):
    got = _read_all("fashion_mnist", tmp_path / "data", split)
    np.testing.assert_array_equal(got["image"], truth[split]["image"])
    np.testing.assert_array_equal(got["label"], truth[split]["label"])


def test_idx_reader_rejects_truncated_file(tmp_path):
  _write_idx(tmp_path / "x", np.zeros((3, 4, 4), np.uint8), compress=False)
  raw = (tmp_path / "x").read_bytes()
  (tmp_path / "x").write_bytes(raw[:-5])
  with pytest.raises(ValueError, match="truncated"):
    fashion_mnist.read_idx(tmp_path / "x")


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.exists(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(tmp_path):
  sources = data.data_sources("fashion_mnist", data_dir=tmp_path)
  assert (len(sources["train"]), len(sources["test"])) == (60000, 10000)
  builder = data.prepare("fashion_mnist", data_dir=tmp_path)
  info = data.dataset_info("fashion_mnist")
  np.testing.assert_allclose(builder.info.metadata["mean"], info.mean,
                             atol=1e-6)
  np.testing.assert_allclose(builder.info.metadata["std"], info.std,
                             atol=1e-6)
  batch = next(data.eval_batches("fashion_mnist", batch_size=256,
                                 data_dir=tmp_path))
  assert batch["input"].shape == (256, 28, 28, 1)


def test_builders_registered_without_collisions(cifar_dir):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from snn_sparse.data import builders  # pylint: disable=g-import-not-at-top
  builders.register_all()
  names = tfds.list_builders(with_community_datasets=False)
  ours = {"snn_digits", "snn_fashion_mnist", "snn_cifar10", "snn_cifar100"}
  assert ours <= set(names)
  # TFDS's own builders keep their names (and stay unimported).
  assert {"fashion_mnist", "cifar10", "cifar100"} <= set(names)
  assert len(names) == len(set(names))
  root, truth = cifar_dir
  sources = tfds.data_source("snn_cifar10", data_dir=root, download=False)
  np.testing.assert_array_equal(sources["test"][3]["image"],
                                truth["test"]["image"][3])


# ----------------------------------------------------------------------------
# Missing data.
# ----------------------------------------------------------------------------


def test_missing_cifar_fails_fast_with_clear_message(tmp_path):
  start = time.perf_counter()
  with pytest.raises(data.DataNotFoundError) as err:
    next(data.train_batches("cifar10", batch_size=8, seed=0,
                            data_dir=tmp_path / "data"))
  assert time.perf_counter() - start < 5.0
  message = str(err.value)
  assert "cifar-10-python.tar.gz" in message
  assert "cifar-10-binary.tar.gz" in message
  assert str(tmp_path / "data" / "downloads" / "manual") in message
  assert not (tmp_path / "data" / "snn_cifar10").exists()
  assert not list((tmp_path / "data").rglob("*.part"))


def test_missing_cifar100_names_manual_dir(tmp_path):
  start = time.perf_counter()
  with pytest.raises(data.DataNotFoundError,
                     match=r"Put cifar-100-python\.tar\.gz .* into "
                     + str(tmp_path / "mine")):
    data.prepare("cifar100", data_dir=tmp_path, manual_dir=tmp_path / "mine")
  assert time.perf_counter() - start < 5.0


def test_missing_fashion_mnist_fails_fast(tmp_path, monkeypatch):
  monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS",
                      (str(tmp_path / "no-package"),))
  start = time.perf_counter()
  with pytest.raises(data.DataNotFoundError) as err:
    data.prepare("fashion_mnist", data_dir=tmp_path / "data")
  assert time.perf_counter() - start < 5.0
  message = str(err.value)
  assert "apt-get install dataset-fashion-mnist" in message
  assert "train-images-idx3-ubyte.gz" in message
  assert "t10k-labels-idx1-ubyte.gz" in message
  assert str(tmp_path / "data" / "downloads" / "manual") in message


@pytest.fixture
def local_http_server(tmp_path):
  """Serves ``tmp_path / "www"`` on 127.0.0.1; yields ``(directory, url)``."""
  import functools  # pylint: disable=g-import-not-at-top
  import http.server  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  www = tmp_path / "www"
  www.mkdir()

  class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
      del args

  handler = functools.partial(Quiet, directory=str(www))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield www, f"http://127.0.0.1:{server.server_address[1]}/"
  finally:
    server.shutdown()
    server.server_close()


def test_download_builds_from_served_tarball(tmp_path, local_http_server,
                                             monkeypatch):
  www, url = local_http_server
  truth = _fake_cifar(www, "cifar10", "python")
  monkeypatch.setattr(cifar_common, "_URL_BASE", url)
  data.prepare("cifar10", data_dir=tmp_path / "data")
  saved = tmp_path / "data" / "downloads" / "manual" / "cifar-10-python.tar.gz"
  assert saved.read_bytes() == (www / "cifar-10-python.tar.gz").read_bytes()
  got = _read_all("cifar10", tmp_path / "data", "test")
  np.testing.assert_array_equal(got["image"], truth["test"]["image"])
  # A failing download (HTTP 404) leaves no partial file behind.
  with pytest.raises(common.DownloadError, match="404"):
    common.download(url + "missing.bin", tmp_path / "missing.bin")
  assert not list(tmp_path.glob("missing.bin*"))


def test_no_download_env_fails_at_once(tmp_path, monkeypatch):
  monkeypatch.setenv(common.NO_DOWNLOAD_ENV, "1")
  with pytest.raises(data.DataNotFoundError, match="disabled"):
    data.prepare("cifar10", data_dir=tmp_path)


def test_default_data_dir_env(monkeypatch, tmp_path):
  monkeypatch.setenv(common.DATA_DIR_ENV, str(tmp_path))
  assert data.default_data_dir() == str(tmp_path)
  monkeypatch.delenv(common.DATA_DIR_ENV)
  assert data.default_data_dir().endswith("tensorflow_datasets")


# ----------------------------------------------------------------------------
# Training order, resume, shards.
# ----------------------------------------------------------------------------


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


def test_train_batches_shapes_and_epochs(cifar_dir):
  root, truth = cifar_dir
  batches = _take(data.train_batches("cifar10", batch_size=6, seed=3,
                                     data_dir=root, augment=False), 6)
  for b in batches:
    assert b["input"].shape == (6, 32, 32, 3)
    assert b["input"].dtype == np.float32 and b["label"].dtype == np.int32
  # 20 examples, batch 6: 3 steps per epoch, 2 examples dropped per epoch.
  info = data.dataset_info("cifar10")
  images = pipeline.normalize(truth["train"]["image"], info)
  for step, b in enumerate(batches):
    idx = pipeline.train_batch_indices(20, batch_size=6, seed=3, step=step)
    np.testing.assert_array_equal(b["input"], images[idx])
    np.testing.assert_array_equal(b["label"], truth["train"]["label"][idx])
  epoch0 = np.concatenate([pipeline.train_batch_indices(
      20, batch_size=6, seed=3, step=s) for s in range(3)])
  epoch1 = np.concatenate([pipeline.train_batch_indices(
      20, batch_size=6, seed=3, step=s) for s in range(3, 6)])
  assert len(set(epoch0)) == len(set(epoch1)) == 18
  assert not np.array_equal(epoch0, epoch1)  # Reshuffled every epoch.


def test_resume_equals_uninterrupted_run(cifar_dir):
  root, _ = cifar_dir
  kwargs = {"batch_size": 6, "seed": 7, "data_dir": root, "augment": True}
  full = _take(data.train_batches("cifar10", **kwargs), 9)
  for k in (1, 2, 3, 5):  # 3 steps per epoch: resumes cross epoch ends.
    resumed = _take(data.train_batches("cifar10", start_step=k, **kwargs),
                    9 - k)
    _assert_batches_equal(resumed, full[k:])
  # Augmentation is on and differs between epochs for the same example.
  plain = _take(data.train_batches("cifar10", batch_size=6, seed=7,
                                   data_dir=root, augment=False), 1)
  assert not np.array_equal(plain[0]["input"], full[0]["input"])
  # Skipping is free: a far step is reached without reading.
  start = time.perf_counter()
  far = next(data.train_batches("cifar10", start_step=10**12, **kwargs))
  assert time.perf_counter() - start < 2.0
  assert far["input"].shape == (6, 32, 32, 3)


def test_process_shards_partition_the_global_batch(cifar_dir):
  root, _ = cifar_dir
  single = _take(data.train_batches("cifar10", batch_size=8, seed=1,
                                    data_dir=root), 4)
  shards = [_take(data.train_batches("cifar10", batch_size=4, seed=1,
                                     data_dir=root, process_index=p,
                                     process_count=2), 4) for p in range(2)]
  for step in range(4):
    for key in ("input", "label"):
      np.testing.assert_array_equal(
          np.concatenate([shards[0][step][key], shards[1][step][key]]),
          single[step][key])
    idx = [set(pipeline.train_batch_indices(20, batch_size=4, seed=1,
                                            step=step, process_index=p,
                                            process_count=2))
           for p in range(2)]
    assert not idx[0] & idx[1]
    assert idx[0] | idx[1] == set(pipeline.train_batch_indices(
        20, batch_size=8, seed=1, step=step))
  with pytest.raises(ValueError, match="process_index"):
    data.train_batches("cifar10", batch_size=4, seed=1, data_dir=root,
                       process_index=2, process_count=2)


# ----------------------------------------------------------------------------
# Evaluation.
# ----------------------------------------------------------------------------


def test_eval_covers_every_example_once(cifar_dir):
  root, truth = cifar_dir
  info = data.dataset_info("cifar10")
  want = pipeline.normalize(truth["test"]["image"], info)
  batches = list(data.eval_batches("cifar10", batch_size=4, data_dir=root))
  assert len(batches) == 2
  assert all(b["input"].shape == (4, 32, 32, 3) for b in batches)
  np.testing.assert_array_equal(batches[1]["mask"], [1, 1, 0, 0])
  x = np.concatenate([b["input"] for b in batches])
  y = np.concatenate([b["label"] for b in batches])
  m = np.concatenate([b["mask"] for b in batches]).astype(bool)
  np.testing.assert_array_equal(x[m], want)
  np.testing.assert_array_equal(y[m], truth["test"]["label"])
  assert not x[~m].any()
  # Two processes, 2 rows each: same number of batches; every example once.
  seen = []
  per_process = [list(data.eval_batches("cifar10", batch_size=2,
                                        data_dir=root, process_index=p,
                                        process_count=2)) for p in range(2)]
  assert len(per_process[0]) == len(per_process[1]) == 2
  for step in range(2):
    for p in range(2):
      b = per_process[p][step]
      seen.extend(b["input"][b["mask"] == 1])
  np.testing.assert_array_equal(np.stack(seen), want)


def test_eval_digits_exact(digits_dir):
  batches = list(data.eval_batches("digits", batch_size=128,
                                   data_dir=digits_dir))
  assert len(batches) == 3
  assert {b["input"].shape for b in batches} == {(128, 8, 8, 1)}
  assert sum(float(b["mask"].sum()) for b in batches) == 360
  labels = np.concatenate([b["label"][b["mask"] == 1] for b in batches])
  np.testing.assert_array_equal(labels, _documented_digits_split()[3])


# ----------------------------------------------------------------------------
# Validation split.
# ----------------------------------------------------------------------------

# digits at validation_fraction 0.1: round(143.7) = 144 held out, 1,293 left;
# 1293 // 64 = 20 training steps per epoch at batch 64.
DIGITS_VAL = 144
DIGITS_KEPT = 1437 - DIGITS_VAL
# The first validation indices of digits at 0.1: the split is part of the
# data contract (a trainer's validation scores stay comparable): pin it.
PINNED_DIGITS_VAL_HEAD = [3, 28, 31, 32, 39, 44, 54, 55]


@pytest.fixture(scope="module")
def digits_train(digits_dir):
  """The stored digits train split, ``{"image", "label"}`` ``[1437, ...]``."""
  return _read_all("digits", digits_dir, "train")


def _digits_expected(stored, idx, *, seed, epoch, padding=0, flip=False):
  """Normalised (augmented) stored digits ``idx``, computed by hand."""
  images = augment_lib.augment(stored["image"][idx], seed=seed, epoch=epoch,
                               indices=idx, padding=padding, flip=flip)
  return pipeline.normalize(images, data.dataset_info("digits"))


def test_split_indices_partition_the_train_split():
  for n in (20, 1437, 60000):
    for fraction in (0.1, 0.25, 0.5):
      train_idx, val_idx = pipeline.split_indices(n, fraction)
      assert train_idx.dtype == val_idx.dtype == np.int64
      assert len(val_idx) == round(fraction * n)
      assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)
      assert not np.intersect1d(train_idx, val_idx).size
      np.testing.assert_array_equal(
          np.sort(np.concatenate([train_idx, val_idx])), np.arange(n))
      # Fixed: recomputing gives the same split (no global RNG state).
      np.random.seed(n)
      again = pipeline.split_indices(n, fraction)
      np.testing.assert_array_equal(again[1], val_idx)
    # A larger fraction holds out a superset of a smaller one.
    small = set(pipeline.split_indices(n, 0.1)[1])
    assert small < set(pipeline.split_indices(n, 0.25)[1])
  train_idx, val_idx = pipeline.split_indices(1437, 0.1)
  assert (len(train_idx), len(val_idx)) == (DIGITS_KEPT, DIGITS_VAL)
  np.testing.assert_array_equal(val_idx[:8], PINNED_DIGITS_VAL_HEAD)
  # Fraction 0: everything trains, nothing is held out.
  train_idx, val_idx = pipeline.split_indices(1437, 0.0)
  np.testing.assert_array_equal(train_idx, np.arange(1437))
  assert val_idx.shape == (0,) and val_idx.dtype == np.int64


def test_split_sizes_and_steps_without_data(tmp_path, monkeypatch):
  monkeypatch.setenv(common.DATA_DIR_ENV, str(tmp_path / "nothing"))
  assert data.split_sizes("digits", 0.1) == {
      "train": 1293, "validation": 144, "test": 360}
  assert data.split_sizes("fashion_mnist", 0.1) == {
      "train": 54000, "validation": 6000, "test": 10000}
  assert data.split_sizes("cifar10", 0.1)["validation"] == 5000
  assert data.split_sizes("digits") == {
      "train": 1437, "validation": 0, "test": 360}
  assert data.steps_per_epoch("digits", 64, validation_fraction=0.1) == 20
  assert data.steps_per_epoch("digits", 64, validation_fraction=0.0) == 22
  assert data.steps_per_epoch("fashion_mnist", 64, process_count=2,
                              validation_fraction=0.1) == 421
  assert data.num_eval_batches("digits", 64, split="validation",
                               validation_fraction=0.1) == 3
  assert data.num_eval_batches("digits", 32, split="validation",
                               process_count=2, validation_fraction=0.1) == 3
  assert data.num_eval_batches("digits", 128, split="train",
                               validation_fraction=0.1) == 11
  assert data.num_eval_batches("digits", 128, split="test",
                               validation_fraction=0.1) == 3
  assert data.num_eval_batches("digits", 128, split="train") == 12
  assert not (tmp_path / "nothing").exists()


def test_validation_errors_name_the_argument(tmp_path):
  for bad in (-0.1, 1.0, 1.5, float("nan"), "0.1", None, True):
    with pytest.raises(ValueError, match=r"validation_fraction must be a "
                       r"number in \[0, 1\), got " + re.escape(repr(bad))):
      data.split_sizes("digits", bad)
  with pytest.raises(ValueError, match=r"validation_fraction must be"):
    pipeline.split_indices(100, 1.0)
  # Fails before looking for data: nothing is built, no DataNotFoundError.
  with pytest.raises(ValueError, match=r"validation_fraction must be"):
    data.train_batches("cifar10", batch_size=8, seed=0,
                       data_dir=tmp_path / "data", validation_fraction=-0.5)
  with pytest.raises(ValueError, match=r"holds out round\(0\.0001 \* 1437\) = 0"
                     r".*pass 0 for no validation split, or at least 1/1437"):
    data.split_sizes("digits", 0.0001)
  # 0.96 holds out 1,380 digits: 57 are left, fewer than one batch of 64.
  with pytest.raises(ValueError, match=r"exceeds the 57 training examples of "
                     r"digits left after holding out 1380 of its 1437 train "
                     r"examples for validation \(validation_fraction=0\.96\): "
                     r"lower validation_fraction or the batch size"):
    data.steps_per_epoch("digits", 64, validation_fraction=0.96)
  with pytest.raises(ValueError, match=r"exceeds the 57 training examples"):
    data.steps_per_epoch("digits", 16, process_count=4,
                         validation_fraction=0.96)
  with pytest.raises(ValueError, match=r"split='validation' needs "
                     r"validation_fraction > 0, got 0\.0: there is no "
                     r"validation split\. Pass the validation_fraction"):
    data.num_eval_batches("digits", 64, split="validation")
  with pytest.raises(ValueError, match=r"split='validation' needs"):
    data.eval_batches("cifar10", batch_size=8, split="validation",
                      data_dir=tmp_path / "data", validation_fraction=0)
  with pytest.raises(ValueError, match=r"split must be one of \('train', "
                     r"'validation', 'test'\), got 'val'"):
    data.num_eval_batches("digits", 64, split="val")
  assert not (tmp_path / "data").exists()


def test_validation_fraction_errors_with_data(digits_dir):
  with pytest.raises(ValueError, match=r"exceeds the 57 training examples of "
                     r"digits left after holding out 1380"):
    data.train_batches("digits", batch_size=64, seed=0, data_dir=digits_dir,
                       validation_fraction=0.96)
  with pytest.raises(ValueError, match=r"exceeds the 57 training examples"):
    pipeline.train_batch_indices(1437, batch_size=64, seed=0, step=0,
                                 validation_fraction=0.96)


def test_fraction_zero_is_todays_order(digits_dir, digits_train):
  """Fraction 0 is bit-for-bit the order and augmentation of the module doc."""
  kwargs = {"batch_size": 64, "seed": 5, "data_dir": digits_dir,
            "crop_padding": 1, "flip": True}
  got = _take(data.train_batches("digits", start_step=20,
                                 validation_fraction=0.0, **kwargs), 4)
  default = _take(data.train_batches("digits", start_step=20, **kwargs), 4)
  _assert_batches_equal(got, default)
  for step, batch in zip(range(20, 24), got):  # 22 steps per epoch.
    epoch, b = divmod(step, 22)
    idx = np.random.default_rng([5, epoch]).permutation(1437)[
        b * 64:(b + 1) * 64]
    np.testing.assert_array_equal(
        pipeline.train_batch_indices(1437, batch_size=64, seed=5, step=step,
                                     validation_fraction=0.0), idx)
    np.testing.assert_array_equal(batch["input"], _digits_expected(
        digits_train, idx, seed=5, epoch=epoch, padding=1, flip=True))
    np.testing.assert_array_equal(batch["label"], digits_train["label"][idx])


def test_validation_train_order_and_augmentation(digits_dir, digits_train):
  """Trains on the kept examples only, keyed by their train-split index."""
  train_idx, val_idx = pipeline.split_indices(1437, 0.1)
  kwargs = {"batch_size": 64, "data_dir": digits_dir, "crop_padding": 1,
            "flip": True, "validation_fraction": 0.1}
  batches = _take(data.train_batches("digits", seed=5, **kwargs), 21)
  for step, batch in enumerate(batches):  # 20 steps per epoch.
    epoch, b = divmod(step, 20)
    idx = train_idx[np.random.default_rng([5, epoch]).permutation(
        DIGITS_KEPT)[b * 64:(b + 1) * 64]]
    np.testing.assert_array_equal(
        pipeline.train_batch_indices(1437, batch_size=64, seed=5, step=step,
                                     validation_fraction=0.1), idx)
    np.testing.assert_array_equal(batch["input"], _digits_expected(
        digits_train, idx, seed=5, epoch=epoch, padding=1, flip=True))
    np.testing.assert_array_equal(batch["label"], digits_train["label"][idx])
  # Over seeds and process counts no validation example is ever trained on;
  # an epoch visits 20 * 64 distinct kept examples.
  for seed in (0, 1, 2):
    for count in (1, 2, 4):
      epoch = np.concatenate([
          pipeline.train_batch_indices(
              1437, batch_size=64 // count, seed=seed, step=s,
              process_index=p, process_count=count, validation_fraction=0.1)
          for s in range(20) for p in range(count)])
      assert len(np.unique(epoch)) == 20 * 64
      assert not np.intersect1d(epoch, val_idx).size
      assert np.isin(epoch, train_idx).all()


def test_validation_resume_equals_uninterrupted_run(digits_dir):
  kwargs = {"batch_size": 64, "seed": 7, "data_dir": digits_dir,
            "crop_padding": 1, "flip": True, "validation_fraction": 0.1}
  full = _take(data.train_batches("digits", **kwargs), 23)
  for k in (1, 19, 20, 21):  # 20 steps per epoch: resumes cross its end.
    resumed = _take(data.train_batches("digits", start_step=k, **kwargs),
                    23 - k)
    _assert_batches_equal(resumed, full[k:])
  # A grain worker process (the pickled split) gives the same batches.
  remote = _take(data.train_batches("digits", start_step=19, worker_count=1,
                                    **kwargs), 3)
  _assert_batches_equal(remote, full[19:22])


def test_validation_process_shards_partition_the_global_batch(digits_dir):
  kwargs = {"seed": 1, "data_dir": digits_dir, "validation_fraction": 0.1}
  for start in (0, 19):
    single = _take(data.train_batches("digits", batch_size=64,
                                      start_step=start, **kwargs), 3)
    shards = [_take(data.train_batches("digits", batch_size=32,
                                       start_step=start, process_index=p,
                                       process_count=2, **kwargs), 3)
              for p in range(2)]
    for step in range(3):
      for key in ("input", "label"):
        np.testing.assert_array_equal(
            np.concatenate([shards[0][step][key], shards[1][step][key]]),
            single[step][key])


def _eval_rows(per_process):
  """Masked rows of per-process eval passes, in global order."""
  xs, ys = [], []
  for step in range(len(per_process[0])):
    for batches in per_process:
      keep = batches[step]["mask"] == 1
      xs.append(batches[step]["input"][keep])
      ys.append(batches[step]["label"][keep])
  return np.concatenate(xs), np.concatenate(ys)


def test_validation_eval_pass(digits_dir, digits_train):
  train_idx, val_idx = pipeline.split_indices(1437, 0.1)
  info = data.dataset_info("digits")
  want = pipeline.normalize(digits_train["image"][val_idx], info)
  batches = list(data.eval_batches("digits", batch_size=64,
                                   split="validation", data_dir=digits_dir,
                                   validation_fraction=0.1))
  assert len(batches) == data.num_eval_batches(
      "digits", 64, split="validation", validation_fraction=0.1) == 3
  assert {b["input"].shape for b in batches} == {(64, 8, 8, 1)}
  mask = np.concatenate([b["mask"] for b in batches])
  np.testing.assert_array_equal(mask, [1] * DIGITS_VAL + [0] * 48)
  x = np.concatenate([b["input"] for b in batches])
  y = np.concatenate([b["label"] for b in batches])
  np.testing.assert_array_equal(x[:DIGITS_VAL], want)
  np.testing.assert_array_equal(y[:DIGITS_VAL], digits_train["label"][val_idx])
  assert not x[DIGITS_VAL:].any() and not y[DIGITS_VAL:].any()
  # Two processes: the same batch count each, every example once, same order.
  per_process = [list(data.eval_batches(
      "digits", batch_size=32, split="validation", data_dir=digits_dir,
      process_index=p, process_count=2, validation_fraction=0.1))
                 for p in range(2)]
  assert len(per_process[0]) == len(per_process[1]) == 3
  x2, y2 = _eval_rows(per_process)
  np.testing.assert_array_equal(x2, want)
  np.testing.assert_array_equal(y2, digits_train["label"][val_idx])
  # split="train" passes over the kept examples; "test" ignores the fraction.
  kept = list(data.eval_batches("digits", batch_size=128, split="train",
                                data_dir=digits_dir, validation_fraction=0.1))
  assert len(kept) == 11
  xk, yk = _eval_rows([kept])
  np.testing.assert_array_equal(yk, digits_train["label"][train_idx])
  np.testing.assert_array_equal(
      xk, pipeline.normalize(digits_train["image"][train_idx], info))
  tests = [list(data.eval_batches("digits", batch_size=128,
                                  data_dir=digits_dir, **kw))
           for kw in ({}, {"validation_fraction": 0.1})]
  _assert_batches_equal(tests[0], tests[1])


# ----------------------------------------------------------------------------
# Augmentation.
# ----------------------------------------------------------------------------


def test_crop_and_flip_by_hand():
  image = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3, 1)
  image = np.concatenate([image, image])
  out = augment_lib.crop_and_flip(image, dy=np.array([0, 2]), dx=np.array([0, 1]),
                               flip=np.array([False, True]), padding=1)
  np.testing.assert_array_equal(out[0, ..., 0], [[0, 0, 0],
                                                 [0, 1, 2],
                                                 [0, 4, 5]])
  np.testing.assert_array_equal(out[1, ..., 0], [[6, 5, 4],
                                                 [9, 8, 7],
                                                 [0, 0, 0]])
  same = augment_lib.crop_and_flip(image, np.array([1, 1]), np.array([1, 1]),
                                np.array([False, False]), padding=1)
  np.testing.assert_array_equal(same, image)


def test_seeded_augmentation_is_fixed_and_uniform():
  dy, dx, flip = augment_lib.augmentation_params(seed=2, epoch=0,
                                              indices=np.arange(4), padding=1)
  image = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3, 1).repeat(4, 0)
  out = augment_lib.crop_and_flip(image, dy, dx, flip, padding=1)
  # The hash is part of the resume contract: pin its values.
  np.testing.assert_array_equal(dy, PINNED_DY)
  np.testing.assert_array_equal(dx, PINNED_DX)
  np.testing.assert_array_equal(flip, PINNED_FLIP)
  np.testing.assert_array_equal(out[..., 0], PINNED_OUT)
  # Different epochs and seeds give different draws; the law is uniform.
  dy2, _, _ = augment_lib.augmentation_params(0, 1, np.arange(4), 1)
  dy3, _, _ = augment_lib.augmentation_params(1, 0, np.arange(4), 1)
  big = augment_lib.augmentation_params(5, 2, np.arange(90000), 4)
  assert not (np.array_equal(dy, dy2) and np.array_equal(dy, dy3))
  for offsets in big[:2]:
    counts = np.bincount(offsets, minlength=9)
    assert len(counts) == 9 and counts.min() > 9000 and counts.max() < 11000
  assert 0.48 < big[2].mean() < 0.52


# seed 2, epoch 0, examples 0..3, padding 1, on the image [[1,2,3],[4,5,6],
# [7,8,9]] (zero-padded to 5x5; offsets index the padded image).
PINNED_DY = [2, 1, 2, 1]
PINNED_DX = [2, 1, 1, 1]
PINNED_FLIP = [True, True, False, True]
PINNED_OUT = [
    [[0, 6, 5], [0, 9, 8], [0, 0, 0]],  # rows 2-4, cols 2-4, mirrored.
    [[3, 2, 1], [6, 5, 4], [9, 8, 7]],  # centre crop, mirrored.
    [[4, 5, 6], [7, 8, 9], [0, 0, 0]],  # rows 2-4, cols 1-3.
    [[3, 2, 1], [6, 5, 4], [9, 8, 7]],
]


def test_worker_process_gives_same_batches(cifar_dir):
  root, _ = cifar_dir
  kwargs = {"batch_size": 6, "seed": 2, "data_dir": root}
  local = _take(data.train_batches("cifar10", **kwargs), 4)
  remote = _take(data.train_batches("cifar10", worker_count=1, **kwargs), 4)
  _assert_batches_equal(remote, local)


def test_cifar_like_throughput(tmp_path):
  _fake_cifar(tmp_path / "manual", "cifar10", "binary",
              sizes=(600, 600, 600, 600, 600, 10))
  it = data.train_batches("cifar10", batch_size=128, seed=0,
                          data_dir=tmp_path / "data",
                          manual_dir=tmp_path / "manual", prefetch=0)
  next(it)
  start = time.perf_counter()
  n = 20
  for _ in range(n):
    next(it)
  rate = n * 128 / (time.perf_counter() - start)
  assert rate > 2000, f"{rate:.0f} images/s"


def test_no_tensorflow_imported():
  assert "tensorflow" not in sys.modules
