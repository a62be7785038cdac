"""Dense layers that skip pruned synapses: two sparse formulations of ``x @ W``,
for the benchmark (``python -m experiments.benchmark --sparse_inference``).

For a masked dense kernel ``W`` ``[in, out]`` (zeros where the mask is off)
and inputs ``x`` ``[N, in]``:

* **gather** (ELL): per output unit ``o`` its active inputs ``idx[o, :K]``
  and weights ``w[o, :K]``, padded to the largest fan-in ``K`` with weight
  0; ``y[n, o] = sum_k x[n, idx[o, k]] * w[o, k]``. Work ``N * out * K``
  instead of ``N * out * in``.
* **bcoo**: ``jax.experimental.sparse.BCOO`` of ``W.T``, ``y = (W.T @ x.T).T``.

Both give ``x @ W`` up to float rounding (the sums run in another order).
:func:`sparse_mlp_apply` runs a whole ``models.SpikingMLP`` with them.

They are measured, not used: on XLA CPU both are slower than the dense
kernel at the connectivities this method reaches (0.1 to 0.3), at batch 1
and 128, so the library infers with dense kernels (docs/performance.md,
"Sparse inference").
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.experimental import sparse as jsparse
import numpy as np

from snn_sparse import neurons

FORMULATIONS = ("dense", "gather", "bcoo")


def ell(kernel, mask) -> tuple[jax.Array, jax.Array]:
  """``(idx [out, K] int32, w [out, K])``: each output's active inputs and
  weights, padded to the largest fan-in ``K`` (at least 1) with index 0 and
  weight 0."""
  kernel = np.asarray(kernel)
  mask = np.asarray(mask, bool)
  rows = [np.flatnonzero(mask[:, o]) for o in range(mask.shape[1])]
  k = max(1, max(len(r) for r in rows))
  idx = np.zeros((mask.shape[1], k), np.int32)
  w = np.zeros((mask.shape[1], k), kernel.dtype)
  for o, r in enumerate(rows):
    idx[o, :len(r)] = r
    w[o, :len(r)] = kernel[r, o]
  return jnp.asarray(idx), jnp.asarray(w)


def gather_matmul(x: jax.Array, idx: jax.Array, w: jax.Array) -> jax.Array:
  """``x`` ``[N, in]`` times the kernel of :func:`ell`: ``[N, out]``."""
  return jnp.einsum("nok,ok->no", x[:, idx], w)


def bcoo(kernel, mask) -> jsparse.BCOO:
  """The transposed masked kernel ``[out, in]`` as a BCOO matrix."""
  dense = np.asarray(kernel) * np.asarray(mask, bool)
  return jsparse.BCOO.fromdense(jnp.asarray(dense.T))


def bcoo_matmul(x: jax.Array, wt: jsparse.BCOO) -> jax.Array:
  """``x`` ``[N, in]`` times the kernel of :func:`bcoo`: ``[N, out]``."""
  return (wt @ x.T).T


def sparse_layers(params, masks, formulation: str) -> list:
  """Per ``Dense_i`` of an MLP's params (it has no others), in order: what
  :func:`sparse_mlp_apply` multiplies by (``(kernel,)``, an ELL pair or a
  BCOO matrix) and the bias."""
  if formulation not in FORMULATIONS:
    raise ValueError(f"formulation={formulation!r}; choose one of "
                     f"{FORMULATIONS}.")
  out = []
  for i in range(len(params)):
    p, m = params[f"Dense_{i}"], masks[f"Dense_{i}"]["kernel"]
    if formulation == "dense":
      op = (jnp.asarray(p["kernel"]) * jnp.asarray(m),)
    elif formulation == "gather":
      op = ell(p["kernel"], m)
    else:
      op = bcoo(p["kernel"], m)
    out.append((op, jnp.asarray(p["bias"])))
  return out


def _matmul(formulation: str) -> Callable:
  if formulation == "dense":
    return lambda x, op: x @ op[0]
  if formulation == "gather":
    return lambda x, op: gather_matmul(x, *op)
  return bcoo_matmul


def sparse_mlp_apply(model, layers_, x: jax.Array, formulation: str
                     ) -> jax.Array:
  """A ``models.SpikingMLP`` forward pass with sparse dense layers.

  ``layers_``: :func:`sparse_layers` of its params; ``x``: ``[T, B, H, W,
  C]``. Returns the per-step logits ``[T, B, classes]``, equal to
  ``model.apply`` up to float rounding.
  """
  if neurons.get(model.neuron).trainable is not None:
    raise ValueError(f"neuron={model.neuron!r}: sparse_mlp_apply runs neurons "
                     "without trained parameters only.")
  matmul = _matmul(formulation)
  t, b = x.shape[:2]
  h = x.reshape(t * b, -1)
  step = neurons.get(model.neuron).step
  for i, (op, bias) in enumerate(layers_):
    h = matmul(h, op) + bias
    if i < len(layers_) - 1:
      h = neurons.multistep(step, h.reshape(t, b, -1),
                            params=model.neuron_params(),
                            unroll=model.unroll)[0].reshape(t * b, -1)
  return h.reshape(t, b, -1)
