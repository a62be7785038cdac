"""Test configuration: CPU only, and a private dataset directory per process.

Each test process (pytest-xdist worker) builds the small datasets it needs
into its own temporary directory, so parallel workers never race on one
build and the user's ``~/tensorflow_datasets`` is left alone.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("SNN_SPARSE_DATA_DIR",
                      tempfile.mkdtemp(prefix="snn_sparse_test_data_"))
