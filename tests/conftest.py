"""Test configuration: CPU only, one device, deterministic float32."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
