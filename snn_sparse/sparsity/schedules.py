"""When sparsity events fire, and the schedules of their amounts.

The two-stage loop runs iterations of ``steps_per_iteration`` optimizer
steps. An in-iteration event fires after step ``s`` when ``s`` is a multiple
of ``every``, lies in ``(start, end]`` (``end = 0``: no end), and at least
``every`` steps of its iteration remain (``(-s) % steps_per_iteration >=
every``): the network that is evaluated and net-pruned at an iteration's end
has trained ``every`` steps since its last rewiring. Without
``steps_per_iteration`` there are no iterations and no quiet steps.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


def steps_left(step: int, steps_per_iteration: int) -> int:
  """Steps of its iteration still to come after optimizer step ``step``.

  Iteration ``i`` is steps ``((i-1)*S, i*S]``; 0 at its last step.
  """
  return (-int(step)) % steps_per_iteration


@dataclasses.dataclass(frozen=True)
class EventTiming:
  """When the in-iteration event fires (host side; see the module docstring).

  Attributes:
    every: period in optimizer steps; 0 = never.
    start: no event at steps ``<= start``.
    end: no event after it; 0 = no end.
    steps_per_iteration: the loop's iteration length, or ``None``.
    fire_at_end: also fire at ``end`` itself (``gmp``'s last prune).
  """

  every: int
  start: int = 0
  end: int = 0
  steps_per_iteration: int | None = None
  fire_at_end: bool = False

  def in_quiet_steps(self, step: int) -> bool:
    """Whether ``step`` is among the last ``every`` steps of its iteration."""
    spi = self.steps_per_iteration
    return bool(spi) and steps_left(step, spi) < self.every

  def fires(self, step: int) -> bool:
    """Whether the event fires once the optimizer has taken ``step`` steps."""
    step = int(step)
    if self.fire_at_end and step == self.end:
      return True
    if self.every <= 0 or step <= self.start:
      return False
    if self.end and step > self.end:
      return False
    if self.in_quiet_steps(step):
      return False
    return step % self.every == 0


def cosine_ratio(step, initial: float, start: int, end: int) -> jax.Array:
  """Cosine-decayed ratio ``initial * (1 + cos(pi * t)) / 2`` (float scalar).

  ``t = clip((step - start) / (end - start), 0, 1)``: ``initial`` at
  ``start``, 0 from ``end`` on.
  """
  t = (jnp.asarray(step, jnp.float32) - start) / max(end - start, 1)
  t = jnp.clip(t, 0.0, 1.0)
  return jnp.asarray(initial, jnp.float32) * 0.5 * (1 + jnp.cos(jnp.pi * t))


def gmp_density(step, *, target: float, start: int, end: int) -> jax.Array:
  """Zhu & Gupta's cubic schedule from density 1 at ``start`` to ``target``."""
  t = (jnp.asarray(step, jnp.float32) - start) / max(end - start, 1)
  t = jnp.clip(t, 0.0, 1.0)
  return target + (1.0 - target) * (1.0 - t)**3
