"""Data parallelism over a one-axis device mesh, with JAX's own sharding.

The mesh has one axis, ``"data"``. Batches are sharded along it
(``NamedSharding(mesh, P("data"))``: each device holds ``B / devices``
examples); the whole train state (params, batch stats, masks, optimizer and
sparsity state) is replicated. The steps are ordinary ``jax.jit`` functions
of global arrays, so XLA inserts the cross-device reductions itself: the loss
and its gradient are means over the global batch, BatchNorm statistics are
taken over the global batch, and the rewiring step sees the same global
gradients and momentum on every device. Random growth draws from the
replicated state key, so every replica computes the same masks.

Multi-host: join the run first (:mod:`snn_sparse.training.distributed`);
the state is then built as global arrays (:func:`replicate`), and each
process feeds its own slice of the global batch, which :func:`shard_batch`
assembles into one global array.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

DATA_AXIS = "data"


def create_mesh(num_devices: int = 0) -> Mesh:
  """A ``("data",)`` mesh over the first ``num_devices`` devices (0: all).

  In a multi-host run the devices are global (all processes' devices).
  """
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise ValueError(
        f"config.mesh.num_devices: {num_devices}, but {len(devices)} "
        f"device(s) are visible; use 0 (all) or 1..{len(devices)}.")
  if num_devices and jax.process_count() > 1 and num_devices != len(devices):
    raise ValueError("config.mesh.num_devices: a multi-host run uses all "
                     "devices; set it to 0.")
  return Mesh(np.array(devices[:num_devices or len(devices)]), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding of batch arrays: split along axis 0 over ``"data"``."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding of the train state: a full copy on every device."""
  return NamedSharding(mesh, P())


def check_batch_size(field: str, batch_size: int, mesh: Mesh) -> None:
  """Raises a ``ValueError`` naming ``field`` unless it splits evenly."""
  n = mesh.devices.size
  if batch_size % n:
    raise ValueError(
        f"config.{field}: {batch_size} is not divisible by the {n} devices "
        f"of the mesh; use a multiple of {n}, or set config.mesh.num_devices.")


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every array leaf of ``tree`` on all devices of ``mesh``.

  Every process passes the same values (built from the same seed); each
  leaf becomes one global array, replicated over the mesh, of which this
  process holds its own devices' copies. Typed PRNG keys stay keys.
  """
  sharding = replicated(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)),
                                      impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding,
                                        lambda index: host[index])

  return jax.tree.map(put, tree)


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, Any]:
  """This process's slice of a global batch -> global arrays sharded on data.

  ``batch`` holds the rows of this process (``B / process_count``); the
  result holds all ``B`` rows, split along axis 0 over the mesh.
  """
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}
