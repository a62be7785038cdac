"""TFDS builders of snn_sparse, one module per dataset.

=================  =====================  ========================
pipeline name      TFDS name              module
=================  =====================  ========================
``digits``         ``snn_digits``         :mod:`.digits`
``fashion_mnist``  ``snn_fashion_mnist``  :mod:`.fashion_mnist`
``cifar10``        ``snn_cifar10``        :mod:`.cifar10`
``cifar100``       ``snn_cifar100``       :mod:`.cifar100`
``cifar10_dvs``    ``snn_cifar10_dvs``    :mod:`.cifar10_dvs`
``dvs_gesture``    ``snn_dvs_gesture``    :mod:`.dvs_gesture`
``nmnist``         ``snn_nmnist``         :mod:`.nmnist`
``digits_events``  ``snn_digits_events``  :mod:`.digits_events`
=================  =====================  ========================

Image builders derive from :class:`.base.ArrayImageBuilder`, event-frame
builders from :class:`.event_base.EventFramesBuilder`. Each builder class
declares its dataset's facts (classes, shape, split sizes, normalisation,
augmentation defaults); :mod:`snn_sparse.data.catalog` reads them.

The TFDS names carry an ``snn_`` prefix so they never collide with TFDS's own
builders. Builder modules import TFDS, so they are imported lazily:
:func:`builder_class` imports one, :func:`register_all` imports all (after
which ``tfds.data_source("snn_cifar10", data_dir=..., download=False)``
works too).
"""

from __future__ import annotations

import importlib

from snn_sparse.data.builders.common import DataNotFoundError
from snn_sparse.data.builders.common import default_data_dir
from snn_sparse.data.builders.common import DownloadError

#: Pipeline name -> (module, class) of its builder.
BUILDERS: dict[str, tuple[str, str]] = {
    "digits": ("digits", "SnnDigits"),
    "fashion_mnist": ("fashion_mnist", "SnnFashionMnist"),
    "cifar10": ("cifar10", "SnnCifar10"),
    "cifar100": ("cifar100", "SnnCifar100"),
    "cifar10_dvs": ("cifar10_dvs", "SnnCifar10Dvs"),
    "dvs_gesture": ("dvs_gesture", "SnnDvsGesture"),
    "nmnist": ("nmnist", "SnnNmnist"),
    "digits_events": ("digits_events", "SnnDigitsEvents"),
}


def builder_class(name: str):
  """The builder class of pipeline dataset ``name`` (imports its module)."""
  if name not in BUILDERS:
    raise ValueError(f"Unknown dataset {name!r}; choose one of "
                     f"{sorted(BUILDERS)}.")
  module, cls = BUILDERS[name]
  return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def register_all() -> None:
  """Imports every builder module, registering the builders with TFDS."""
  for name in BUILDERS:
    builder_class(name)


__all__ = ["BUILDERS", "DataNotFoundError", "DownloadError", "builder_class",
           "default_data_dir", "register_all"]
