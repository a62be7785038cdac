"""Losses over per-step logits ``[T, B, classes]`` and integer labels ``[B]``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _check(logits: jax.Array, labels: jax.Array) -> None:
  if logits.ndim != 3 or labels.shape != logits.shape[1:2]:
    raise ValueError(
        "Expected per-step logits [T, B, classes] and labels [B]; got logits "
        f"{tuple(logits.shape)} and labels {tuple(labels.shape)}.")


def _mean(per_example: jax.Array, weights) -> jax.Array:
  if weights is None:
    return per_example.mean()
  return jnp.sum(per_example * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def mean_cross_entropy(logits: jax.Array, labels: jax.Array,
                       weights=None) -> jax.Array:
  """Cross-entropy of the time-averaged logits, averaged over the batch.

  ``CE(mean_t logits[t], labels)``; a scalar. ``weights`` ``[B]`` (e.g. an
  eval padding mask) make it a weighted mean.
  """
  _check(logits, labels)
  return _mean(optax.softmax_cross_entropy_with_integer_labels(
      logits.mean(0), labels), weights)


def tet_loss(logits: jax.Array, labels: jax.Array, weights=None, *,
             lamb: float = 0.0, phi: float = 1.0) -> jax.Array:
  """TET (Deng et al. 2022): the mean over t of the per-step cross-entropy.

  ``(1 - lamb) * mean_t CE(logits[t], labels) + lamb * mean((logits - phi)**2)``;
  the second term is TET's optional MSE regulariser towards ``phi``. A scalar;
  ``weights`` ``[B]`` weight the examples.
  """
  _check(logits, labels)
  ce = optax.softmax_cross_entropy_with_integer_labels(
      logits, jnp.broadcast_to(labels, logits.shape[:2])).mean(0)
  if lamb == 0.0:
    return _mean(ce, weights)
  mse = jnp.mean((logits - phi) ** 2, axis=(0, 2))
  return _mean((1.0 - lamb) * ce + lamb * mse, weights)


LOSSES = {"ce": mean_cross_entropy, "tet": tet_loss}


def get_loss(name: str):
  """The loss function registered as ``name`` (``"ce"`` or ``"tet"``)."""
  if name not in LOSSES:
    raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.")
  return LOSSES[name]
