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


def mean_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Cross-entropy of the time-averaged logits, averaged over the batch.

  ``CE(mean_t logits[t], labels)``; a scalar.
  """
  _check(logits, labels)
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.mean(0), labels).mean()


def tet_loss(logits: jax.Array, labels: jax.Array, *, lamb: float = 0.0,
             phi: float = 1.0) -> jax.Array:
  """TET (Deng et al. 2022): the mean over t of the per-step cross-entropy.

  ``(1 - lamb) * mean_t CE(logits[t], labels) + lamb * mean((logits - phi)**2)``;
  the second term is TET's optional MSE regulariser towards ``phi``. A scalar.
  """
  _check(logits, labels)
  ce = optax.softmax_cross_entropy_with_integer_labels(
      logits, jnp.broadcast_to(labels, logits.shape[:2])).mean()
  if lamb == 0.0:
    return ce
  return (1.0 - lamb) * ce + lamb * jnp.mean((logits - phi) ** 2)


LOSSES = {"ce": mean_cross_entropy, "tet": tet_loss}


def get_loss(name: str):
  """The loss function registered as ``name`` (``"ce"`` or ``"tet"``)."""
  if name not in LOSSES:
    raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.")
  return LOSSES[name]
