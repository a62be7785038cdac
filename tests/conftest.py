"""Test configuration: CPU only, and a private dataset directory per process.

Each test process (every pytest-xdist worker) builds the small datasets it
needs into its own temporary directory, so parallel workers never race on
one build and the user's dataset directory is left alone.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ["SNN_SPARSE_DATA_DIR"] = tempfile.mkdtemp(
    prefix=f"snn_sparse_test_data_{_worker}_")
