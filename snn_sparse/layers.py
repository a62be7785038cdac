"""Flax Linen layers for time-major spiking networks.

Conv, pooling, BatchNorm and dense layers run on the time-folded batch
``[T*B, ...]`` (:func:`time_folded`); only the neuron recurrence scans over T
(:class:`SpikingNeuron`). BatchNorm statistics are therefore taken over all
time steps and samples together, as in tdBN and SpikingJelly's multi-step
mode.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import flax.linen as nn
from flax.linen.linear import canonicalize_padding
import jax
import jax.numpy as jnp

from snn_sparse import neurons
from snn_sparse.platform import conv_cpu


def fold_time(x: jax.Array) -> jax.Array:
  """``[T, B, ...] -> [T*B, ...]``."""
  if x.ndim < 2:
    raise ValueError(f"Expected a time-major [T, B, ...] array; got {x.shape}.")
  return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def unfold_time(y: jax.Array, time_steps: int) -> jax.Array:
  """``[T*B, ...] -> [T, B, ...]``."""
  return y.reshape((time_steps, y.shape[0] // time_steps) + y.shape[1:])


def time_folded(fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Applies a per-sample layer ``fn`` to every time step of ``x`` ``[T, B, ...]``.

  ``fn`` runs once on the folded batch ``[T*B, ...]``; the result is unfolded
  back to ``[T, B, ...]``.
  """
  return unfold_time(fn(fold_time(x)), x.shape[0])


def _ops_name(analog_input: bool) -> str:
  return "macs" if analog_input else "sops"


def _input_events(x: jax.Array, analog_input: bool) -> jax.Array:
  """Per input of a Conv/Dense, what one active synapse leaving it counts.

  Analog input (MACs): 1 for every non-zero input. Spiking input (SOPs):
  ``|x|``, the spikes (events) the value stands for in units of the layer's
  ``spikes_per_unit``, by which the per-sample sums are then multiplied.
  """
  if analog_input:
    return (x != 0).astype(jnp.float32)
  return jnp.abs(x).astype(jnp.float32)


def _ops(per_sample: jax.Array, analog_input: bool, spikes_per_unit: float,
         repeats: int) -> jax.Array:
  """Scales the ``[N]`` sums of ``_input_events * fan_out`` to operations,
  repeated ``repeats`` times along the folded batch (``[repeats * N]``)."""
  ops = per_sample if analog_input else per_sample * spikes_per_unit
  return jnp.tile(ops, repeats) if repeats > 1 else ops


def _input_fan_out(kernel: jax.Array, in_shape, strides, padding) -> jax.Array:
  """Active synapses leaving each input position of a conv, ``[H, W, Cin]``.

  For input ``(h, w, c)``: the number of (output position, output channel)
  pairs that read it through an active (non-zero) weight, borders and strides
  included. A conv's operations per sample are then ``sum(events * this)``
  (see ``Conv``). It is the input gradient of the conv with the per-tap
  fan-out as kernel at an output gradient of ones, so it costs one
  single-image pass.
  """
  fan_out = (kernel != 0).sum(-1, keepdims=True).astype(jnp.float32)
  spatial = len(in_shape) - 1
  strides = strides or 1
  if isinstance(strides, int):
    strides = (strides,) * spatial
  conv = functools.partial(
      jax.lax.conv_general_dilated, rhs=fan_out, window_strides=strides,
      padding=canonicalize_padding(padding, spatial),
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST)
  out, vjp = jax.vjp(conv, jnp.zeros((1,) + tuple(in_shape), jnp.float32))
  return vjp(jnp.ones_like(out))[0][0]


class Conv(nn.Conv):
  """``nn.Conv`` that can also report its synaptic operations.

  When the ``"intermediates"`` collection is mutable it sows, under ``"sops"``
  (or ``"macs"`` when ``analog_input``), the operations of each sample of the
  (folded) batch ``x`` ``[N, H, W, Cin]``, a ``[N]`` vector
  ``sum_{h,w,c} events(x[n, h, w, c]) * fan_out[h, w, c]``, where
  ``fan_out[h, w, c]`` is the number of active (non-zero) synapses leaving
  input ``(h, w, c)`` (the (output position, output channel) pairs that read
  it through a non-zero weight, borders and strides included).

  The convention (METHOD.md §4, ``snn_sparse.metrics``): one SOP is one input
  spike crossing one active synapse. For a spiking input (``analog_input``
  False), ``events(x) = |x| * spikes_per_unit``:

  * binary spikes (``spikes_per_unit = 1``): one spike per 1;
  * event-count frames (``spikes_per_unit = 1``): a count of n is n events;
  * average-pooled spikes (``spikes_per_unit`` = the pooling window's area;
    H*W after a global average pool): a pooled value ``k / area`` stands for
    the ``k`` spikes of its window, each of which crosses every active
    synapse leaving the pooled position, so the count equals counting the
    spikes before the pooling. Average pools in series multiply;
  * max-pooled spikes stay 0/1: the pooled spike is one spike
    (``spikes_per_unit = 1``);
  * spikes after inverted dropout (kept values ``1 / (1 - rate)``):
    ``spikes_per_unit = 1 - rate`` in training, 1 when deterministic.

  Non-integer values (frames resized by interpolation) count as fractional
  events, the value the layer receives; a negative value (only a resize with
  negative weights could make one) counts by its magnitude, so SOPs never
  go negative. For an analog input (``analog_input``: the image) the
  layer counts MACs instead, ``events(x) = (x != 0)``, and
  ``spikes_per_unit`` is ignored.

  Attributes (besides ``nn.Conv``'s):
    analog_input: the input is analog: count MACs under ``"macs"``.
    spikes_per_unit: how many spikes (events) an input value of 1 stands
      for (see above); 1 for spikes and event counts. The models set it
      where they pool (``models.base.pooled_spikes_per_unit``).
    ops_repeats: the layer runs on one time step that stands for this many
      identical ones (a ``repeated_input`` model's first layer): the sown
      ``[N]`` operations are tiled to ``[ops_repeats * N]``, the time-folded
      count of all steps.
    conv_general_dilated: the convolution (below).

  The convolution defaults to ``conv_cpu.auto_conv_general_dilated``: on the
  CPU backend its weight gradient is computed as one matmul per kernel tap
  (much faster than XLA CPU's weight-gradient convolution); elsewhere it is
  XLA's native convolution. Pass ``conv_general_dilated=
  conv_cpu.get_conv_fn("xla" | "matmul_wgrad" | "auto")`` to choose. Forward
  values are identical either way.
  """

  conv_general_dilated: Optional[Callable] = (
      conv_cpu.auto_conv_general_dilated)
  analog_input: bool = False
  spikes_per_unit: float = 1.0
  ops_repeats: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = super().__call__(x)
    if self.is_mutable_collection("intermediates"):
      cover = _input_fan_out(self.variables["params"]["kernel"], x.shape[1:],
                             self.strides, self.padding)
      ops = jnp.einsum("n...,...->n", _input_events(x, self.analog_input),
                       cover, precision=jax.lax.Precision.HIGHEST)
      ops = _ops(ops, self.analog_input, self.spikes_per_unit,
                 self.ops_repeats)
      self.sow("intermediates", _ops_name(self.analog_input), ops)
    return y


class Dense(nn.Dense):
  """``nn.Dense`` that can also report its synaptic operations (see ``Conv``).

  For ``x`` ``[N, F]`` it sows a ``[N]`` vector under ``"sops"`` (or
  ``"macs"`` when ``analog_input``): per sample, ``sum_f events(x[n, f]) *
  fan_out[f]``, with ``fan_out[f]`` the active (non-zero) weights of input
  feature ``f`` and ``events`` as in ``Conv``: ``|x| * spikes_per_unit`` for
  spiking input (e.g. ``spikes_per_unit = H*W`` after a global average pool
  over ``H x W`` positions), ``x != 0`` for analog input (MACs).

  Attributes (besides ``nn.Dense``'s): ``analog_input``,
  ``spikes_per_unit`` and ``ops_repeats``, as in ``Conv``.
  """

  analog_input: bool = False
  spikes_per_unit: float = 1.0
  ops_repeats: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = super().__call__(x)
    if self.is_mutable_collection("intermediates"):
      fan_out = (self.variables["params"]["kernel"] != 0).sum(-1)
      ops = jnp.matmul(_input_events(x, self.analog_input),
                       fan_out.astype(jnp.float32),
                       precision=jax.lax.Precision.HIGHEST)
      ops = _ops(ops, self.analog_input, self.spikes_per_unit,
                 self.ops_repeats)
      self.sow("intermediates", _ops_name(self.analog_input), ops)
    return y


class SpikingNeuron(nn.Module):
  """A multi-step spiking neuron layer over ``[T, B, ...]``: returns spikes.

  ``kind`` names a neuron of the registry (``neurons.get``): ``"lif"``,
  ``"if"``, ``"plif"`` (learned ``tau``: a parameter ``w`` with
  ``tau = 1 / sigmoid(w)``, initialised so that ``tau = params.tau``), or any
  kind registered with ``neurons.register``. A kind's trained parameters
  (PLIF's ``w``) are neuron parameters: never masked, never pruned.
  ``params``: the :class:`snn_sparse.neurons.NeuronParams`. ``unroll`` and
  ``remat`` are those of :func:`snn_sparse.neurons.multistep` (``True``, the
  default ``unroll``, unrolls all T steps, see ``models.base.SpikingModel``;
  ``remat``: recompute each time step in the backward pass instead of
  storing its intermediates). A call starts from the kind's rest state,
  unless the variables hold a ``"neuron_state"`` collection: then it starts
  from that state, and with ``"neuron_state"`` mutable it stores its final
  state there. So a model runs on a stream chunk by chunk::

    logits, state = model.apply(variables, chunk, train=False,
                                mutable=["neuron_state"])
    variables = {**variables, **state}     # the next chunk continues here
  When ``"intermediates"`` is mutable it sows its firing rate under
  ``"firing_rate"``: ``[T, B]``, the mean spike over the layer's neurons.
  """

  kind: str = "lif"
  params: neurons.NeuronParams = neurons.NeuronParams()
  unroll: int | bool = True
  remat: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    neuron = neurons.get(self.kind)
    params = self.params
    if neuron.trainable is not None:
      params = neuron.trainable(params, self.param, x)
    state = (self.get_variable("neuron_state", "state")
             if self.has_variable("neuron_state", "state") else None)
    spikes, final = neurons.multistep(neuron.step, x, state, params=params,
                                      init=neuron.init, unroll=self.unroll,
                                      remat=self.remat)
    if (self.is_mutable_collection("neuron_state")
        and not self.is_initializing()):
      self.put_variable("neuron_state", "state", final)
    return self._report(spikes)

  def _report(self, spikes: jax.Array) -> jax.Array:
    if self.is_mutable_collection("intermediates"):
      rate = spikes.reshape(spikes.shape[:2] + (-1,)).mean(-1)
      self.sow("intermediates", "firing_rate", rate)
    return spikes


class TimeBatchNorm(nn.Module):
  """BatchNorm over the time-folded batch of ``x`` ``[T, B, ..., C]``.

  With ``alpha_vth`` (tdBN, Zheng et al. 2021) the scale is initialised to
  ``alpha * v_threshold`` instead of 1, which is tdBN's normalisation to the
  threshold. Momentum 0.9 equals PyTorch's 0.1.
  """

  use_running_average: bool = False
  momentum: float = 0.9
  epsilon: float = 1e-5
  alpha_vth: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    bn = nn.BatchNorm(use_running_average=self.use_running_average,
                      momentum=self.momentum, epsilon=self.epsilon,
                      scale_init=nn.initializers.constant(self.alpha_vth))
    return time_folded(bn, x)


def _pool_windows(x: jax.Array, window: int) -> jax.Array:
  """``[N, H, W, C] -> [N, H//k, k, W//k, k, C]`` (VALID: the rest dropped)."""
  n, h, w, c = x.shape
  hh, ww = h // window, w // window
  x = x[:, :hh * window, :ww * window]
  return x.reshape(n, hh, window, ww, window, c)


def _window_taps(xw: jax.Array) -> list[jax.Array]:
  """The ``k*k`` taps ``[N, H//k, W//k, C]`` of windows, in row-major order."""
  k = xw.shape[2]
  return [xw[:, :, a, :, b, :] for a in range(k) for b in range(k)]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def max_pool(x: jax.Array, window: int = 2) -> jax.Array:
  """``window`` x ``window`` max pooling, stride ``window``, VALID padding.

  ``x``: ``[N, H, W, C]`` -> ``[N, H // window, W // window, C]``; equal to
  ``flax.linen.max_pool(x, (k, k), (k, k))``, gradient included: the
  gradient of each window goes to its first maximal element in row-major
  order, as XLA's select-and-scatter sends it (spikes tie often). The
  forward pass keeps only the position of that element (int8, one per
  output) for the backward pass, and the backward pass is an elementwise
  select instead of a scatter.
  """
  return _max_pool_fwd(x, window)[0]


def _max_pool_fwd(x, window):
  taps = _window_taps(_pool_windows(x, window))
  y = functools.reduce(jnp.maximum, taps)
  first = jnp.full(y.shape, len(taps) - 1, jnp.int8)
  for t in reversed(range(len(taps) - 1)):
    first = jnp.where(taps[t] == y, jnp.int8(t), first)
  return y, (first, x.shape)


def _max_pool_bwd(window, residuals, g):
  first, shape = residuals
  n, h, w, c = shape
  taps = [jnp.where(first == t, g, jnp.zeros((), g.dtype))
          for t in range(window * window)]
  rows = [jnp.stack(taps[a * window:(a + 1) * window], axis=3)
          for a in range(window)]       # each [N, H//k, W//k, k, C]
  gx = jnp.stack(rows, axis=2)          # [N, H//k, k, W//k, k, C]
  hh, ww = h // window, w // window
  gx = gx.reshape(n, hh * window, ww * window, c)
  if (hh * window, ww * window) != (h, w):
    gx = jnp.pad(gx, ((0, 0), (0, h - hh * window), (0, w - ww * window),
                      (0, 0)))
  return (gx,)


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def repeat_time(x: jax.Array, time_steps: int) -> jax.Array:
  """Direct encoding: ``[B, ...] -> [T, B, ...]``, the same input at every step."""
  return jnp.broadcast_to(x[None], (time_steps,) + x.shape)
