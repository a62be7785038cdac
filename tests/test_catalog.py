"""Tests of snn_sparse.data.catalog: every fact stated once, by its builder."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from snn_sparse import data
from snn_sparse.data import builders
from snn_sparse.data import catalog

PACKAGE = pathlib.Path(catalog.__file__).resolve().parents[1]


def _declared(name: str) -> dict:
  """The facts builder class ``name`` declares, read attribute by attribute."""
  cls = builders.builder_class(name)
  if hasattr(cls, "FRAMES_SHAPE"):
    frames, shape = cls.FRAMES_SHAPE[0], tuple(cls.FRAMES_SHAPE[1:])
  else:
    frames, shape = 0, tuple(cls.IMAGE_SHAPE)
  return {"name": name, "num_classes": cls.NUM_CLASSES, "input_shape": shape,
          "num_train": cls.NUM_TRAIN, "num_test": cls.NUM_TEST,
          "mean": tuple(cls.MEAN), "std": tuple(cls.STD),
          "pixel_max": cls.PIXEL_MAX, "crop_padding": cls.CROP_PADDING,
          "flip": cls.FLIP, "frames": frames, "roll": cls.ROLL}


@pytest.mark.parametrize("name", list(builders.BUILDERS))
def test_catalogue_entry_is_what_the_builder_declares(name):
  info = data.dataset_info(name)
  assert info == catalog.DatasetInfo(**_declared(name))
  assert data.DATASETS[name] == info
  assert info.num_classes > 0 and info.num_train > 0 and info.num_test > 0
  assert len(info.mean) == len(info.std) == info.input_shape[-1]
  assert info.example_shape == (
      builders.builder_class(name).FRAMES_SHAPE if info.frames
      else info.input_shape)


def test_catalogue_lists_exactly_the_registered_builders():
  assert list(data.DATASETS) == list(builders.BUILDERS)
  assert len(data.DATASETS) == len(builders.BUILDERS)
  assert dict(data.DATASETS) == {n: data.dataset_info(n)
                                 for n in builders.BUILDERS}
  with pytest.raises(KeyError):
    data.DATASETS["mnist"]  # pylint: disable=pointless-statement


def test_catalogue_reads_the_builder_not_a_copy(monkeypatch):
  """A changed builder fact changes every answer derived from it."""
  cls = builders.builder_class("digits")
  monkeypatch.setattr(cls, "NUM_TRAIN", 1000)
  monkeypatch.setattr(cls, "MEAN", (0.5,))
  monkeypatch.setattr(cls, "CROP_PADDING", 2)
  info = data.dataset_info("digits")
  assert (info.num_train, info.mean, info.crop_padding) == (1000, (0.5,), 2)
  assert data.DATASETS["digits"] == info
  assert data.split_sizes("digits", 0.1) == {
      "train": 900, "validation": 100, "test": cls.NUM_TEST}
  assert data.steps_per_epoch("digits", 100, validation_fraction=0.1) == 9


def _stated_in(text: str) -> list[str]:
  """Package source files (relative paths) containing the literal ``text``."""
  pattern = re.compile(r"(?<![\d.])" + re.escape(text) + r"0*(?!\d)")
  return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                if pattern.search(p.read_text()))


@pytest.mark.parametrize("name", ["digits", "fashion_mnist", "cifar10",
                                  "cifar100"])
def test_normalisation_statistics_are_written_once(name):
  """Each mean and std literal appears in one file only: its builder's."""
  info = data.dataset_info(name)
  module = builders.BUILDERS[name][0]
  for value in (*info.mean, *info.std):
    assert _stated_in(repr(value)) == [f"data/builders/{module}.py"], value


def test_unknown_dataset_lists_the_valid_names():
  with pytest.raises(ValueError, match=r"Unknown dataset 'mnist'") as err:
    data.dataset_info("mnist")
  assert str(sorted(builders.BUILDERS)) in str(err.value)
  for call in (lambda: data.split_sizes("imagenet"),
               lambda: data.steps_per_epoch("imagenet", 8),
               lambda: data.prepare("imagenet")):
    with pytest.raises(ValueError, match=re.escape(
        f"Unknown dataset 'imagenet'; choose one of "
        f"{sorted(builders.BUILDERS)}.")):
      call()


def test_names_are_matched_loosely():
  assert data.dataset_info("SNN_Digits").name == "digits"
  assert data.dataset_info(" Fashion-MNIST ").name == "fashion_mnist"
  assert data.dataset_info("cifar10-dvs") == data.DATASETS["cifar10_dvs"]


@pytest.mark.parametrize("name", ["digits", "digits_events"])
def test_offline_builds_match_the_declared_facts(name):
  """What the builder writes has the split sizes and shapes it declares."""
  info = data.dataset_info(name)
  sources = data.data_sources(name)
  assert (len(sources["train"]), len(sources["test"])) == (info.num_train,
                                                           info.num_test)
  example = sources["test"][0]
  assert np.asarray(example[info.feature]).shape == info.example_shape
  labels = [int(sources["train"][i]["label"]) for i in range(0, 1437, 7)]
  assert max(labels) < info.num_classes
  if not info.frames:  # The statistics are those of the built train split.
    meta = data.prepare(name).info.metadata
    np.testing.assert_allclose(meta["mean"], info.mean, atol=1e-6)
    np.testing.assert_allclose(meta["std"], info.std, atol=1e-6)
