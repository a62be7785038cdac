"""Taking a trained sparse network out of snn_sparse.

* :mod:`compressed`: ``save_sparse`` / ``load_sparse``, a small file of
  bit-packed masks plus the active values (float32, float16 or int8).
* :mod:`nir_graph`: ``to_nir``, the network as a NIR graph (BatchNorm folded
  by :mod:`bn_fold`, neurons mapped by :mod:`nir_neurons`, masked weights as
  explicit zeros), for other simulators and neuromorphic hardware.
* :mod:`nir_reference`: ``simulate``, a NumPy simulator of NIR's discrete
  semantics; :mod:`nir_verify`: ``compare``, an exported graph against the
  JAX model, spike for spike.
* :mod:`workdir`: ``restore``, the trained network of a training workdir.

The NIR parts need the ``nir`` package (``pip install 'snn-sparse[nir]'``)
when called, not when imported.
"""

from snn_sparse.export.compressed import (LOGIT_TOLERANCE, SparseFileError,
                                          format_size_report, load_sparse,
                                          logit_error, read_header,
                                          save_sparse, size_report)
from snn_sparse.export.nir_graph import to_nir
from snn_sparse.export.nir_neurons import NIRExportError

__all__ = ["LOGIT_TOLERANCE", "NIRExportError", "SparseFileError",
           "format_size_report", "load_sparse", "logit_error", "read_header",
           "save_sparse", "size_report", "to_nir"]
