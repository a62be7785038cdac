"""A small NumPy simulator of NIR graphs, from NIR's documented semantics.

It is independent of the JAX model: it reads only the graph (as
``nir.read`` returns it) and steps it in float64, so agreement with the model
checks the export end to end. Time is discrete: each call step ``t`` feeds
``inputs[t]`` to the ``Input`` node and evaluates every node once, in
topological order; a node's input is the sum of the outputs of the nodes with
an edge into it, at the same step (so a graph must be feed-forward). With
``dt`` the graph's time step (``graph.metadata["dt"]``, or given), stateful
nodes follow their ODEs by forward Euler, and stateless ones are
instantaneous (per sample, NIR's layouts, no batch axis in the types)::

    Affine:    y = W x + b          Linear: y = W x        Scale: y = s * x
    Conv2d:    cross-correlation (OIHW weights), stride, zero padding,
               dilation, bias; groups = 1
    AvgPool2d: mean of each window (zero padding counted, as PyTorch does)
    SumPool2d: sum of each window
    Flatten:   per-sample dims start_dim..end_dim joined, in C order
    Threshold: z = x > threshold
    I:         v += dt * r * I;                          output v
    LI:        v += dt / tau * (v_leak - v + r * I);     output v
    IF:        v += dt * r * I;        z = v > v_threshold; v = v_reset where z
    LIF:       v += dt / tau * (v_leak - v + r * I);  z = v > v_threshold;
               v = v_reset where z;                      output z

Every state starts at 0. Other nodes (CubaLIF, Delay, subgraphs, ...) are
refused with a ``ValueError``.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np


def _pair(value) -> tuple[int, int]:
  a = np.asarray(value).reshape(-1)
  return (int(a[0]), int(a[-1]))


def conv2d(x: np.ndarray, weight: np.ndarray, bias, stride, padding,
           dilation, groups=1) -> np.ndarray:
  """NIR ``Conv2d`` on ``x`` ``[B, C, H, W]`` with ``weight`` ``[O, C, kh,
  kw]``: ``y[b, o, i, j] = bias[o] + sum_{c, p, q} weight[o, c, p, q] *
  xpad[b, c, i * sh + p * dh, j * sw + q * dw]``. Returns ``[B, O, H', W']``."""
  if int(np.asarray(groups).reshape(-1)[0]) != 1:
    raise ValueError("The reference simulator runs Conv2d with groups=1 only.")
  o, c, kh, kw = weight.shape
  sh, sw = _pair(stride)
  dh, dw = _pair(dilation)
  if isinstance(padding, (str, bytes)):
    padding = padding.decode() if isinstance(padding, bytes) else padding
    if padding == "valid":
      ph = pw = 0
    elif padding == "same" and (sh, sw) == (1, 1) and kh % 2 and kw % 2:
      ph, pw = dh * (kh - 1) // 2, dw * (kw - 1) // 2
    else:
      raise ValueError(f"Conv2d padding {padding!r} with stride {(sh, sw)} "
                       f"and kernel {(kh, kw)} is not supported.")
  else:
    ph, pw = _pair(padding)
  xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
  oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
  ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
  y = np.zeros((x.shape[0], o, oh, ow))
  for p in range(kh):
    for q in range(kw):
      tap = xp[:, :, p * dh:p * dh + sh * (oh - 1) + 1:sh,
               q * dw:q * dw + sw * (ow - 1) + 1:sw]
      y += np.einsum("bchw,oc->bohw", tap, weight[:, :, p, q])
  return y + np.asarray(bias).reshape(1, o, 1, 1)


def pool2d(x: np.ndarray, kernel_size, stride, padding,
           average: bool) -> np.ndarray:
  """Sum (or average over the window area) pooling of ``x`` ``[B, C, H, W]``."""
  kh, kw = _pair(kernel_size)
  sh, sw = _pair(stride)
  ph, pw = _pair(padding)
  xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
  oh = (xp.shape[2] - kh) // sh + 1
  ow = (xp.shape[3] - kw) // sw + 1
  y = np.zeros(x.shape[:2] + (oh, ow))
  for p in range(kh):
    for q in range(kw):
      y += xp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw]
  return y / (kh * kw) if average else y


def flatten(x: np.ndarray, start_dim: int, end_dim: int) -> np.ndarray:
  """NIR ``Flatten`` of ``x`` ``[B, ...]``: dims of one sample (no batch)."""
  shape = x.shape[1:]
  n = len(shape)
  start = int(start_dim) % n if n else 0
  end = int(end_dim) % n if n else 0
  joined = int(np.prod(shape[start:end + 1]))
  return x.reshape((x.shape[0],) + shape[:start] + (joined,)
                   + shape[end + 1:])


def _order(graph) -> list[str]:
  """Topological order of the nodes; a ``ValueError`` for a cycle."""
  indegree = {name: 0 for name in graph.nodes}
  for _, dst in graph.edges:
    indegree[dst] += 1
  ready = collections.deque(n for n, d in indegree.items() if d == 0)
  order = []
  while ready:
    name = ready.popleft()
    order.append(name)
    for src, dst in graph.edges:
      if src == name:
        indegree[dst] -= 1
        if indegree[dst] == 0:
          ready.append(dst)
  if len(order) != len(graph.nodes):
    raise ValueError("The graph has a cycle (recurrent edges); the reference "
                     "simulator runs feed-forward graphs only.")
  return order


def _f64(x) -> np.ndarray:
  return np.asarray(x, np.float64)


def simulate(graph, inputs: np.ndarray, *, dt: float | None = None,
             record: bool = False) -> Any:
  """Runs ``graph`` on ``inputs`` ``[T, B, *input_type]`` for T steps.

  Args:
    graph: a ``nir.NIRGraph`` with one ``Input`` and one ``Output`` node.
    inputs: the input of every step, per sample in the Input's type (e.g.
      ``[C, H, W]`` images: ``[T, B, C, H, W]``).
    dt: the time step; default ``graph.metadata["dt"]``.
    record: also return every node's outputs.

  Returns:
    The Output's values ``[T, B, *output_type]`` (float64); with ``record``
    ``(outputs, {node name: [T, B, ...]})``.
  """
  import nir  # pylint: disable=g-import-not-at-top
  if dt is None:
    if "dt" not in (graph.metadata or {}):
      raise ValueError("The graph's metadata holds no 'dt'; pass dt=.")
    dt = float(np.asarray(graph.metadata["dt"]))
  inputs = _f64(inputs)
  order = _order(graph)
  sources = {name: [s for s, d in graph.edges if d == name]
             for name in graph.nodes}
  ins = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
  outs = [n for n, node in graph.nodes.items()
          if isinstance(node, nir.Output)]
  if len(ins) != 1 or len(outs) != 1:
    raise ValueError(f"Expected one Input and one Output node; got {ins} and "
                     f"{outs}.")
  state: dict[str, np.ndarray] = {}
  kept = list(graph.nodes) if record else [outs[0]]
  history = {name: [] for name in kept}
  for t in range(inputs.shape[0]):
    values: dict[str, np.ndarray] = {}
    for name in order:
      node = graph.nodes[name]
      if isinstance(node, nir.Input):
        values[name] = inputs[t]
      else:
        x = sum(values[s] for s in sources[name])
        values[name], state[name] = _step(nir, node, x, state.get(name), dt,
                                          name)
    for name in kept:
      history[name].append(values[name])
  out = np.stack(history[outs[0]])
  if record:
    return out, {k: np.stack(v) for k, v in history.items()}
  return out


def _step(nir, node, x, v, dt, name):
  """One step of ``node`` on input ``x`` ``[B, ...]`` from state ``v``;
  returns ``(output, state)``."""
  if isinstance(node, nir.Output):
    return x, None
  if isinstance(node, nir.Affine):
    return x @ _f64(node.weight).T + _f64(node.bias), None
  if isinstance(node, nir.Linear):
    return x @ _f64(node.weight).T, None
  if isinstance(node, nir.Scale):
    return x * _f64(node.scale), None
  if isinstance(node, nir.Conv2d):
    return conv2d(x, _f64(node.weight), _f64(node.bias), node.stride,
                  node.padding, node.dilation, node.groups), None
  if isinstance(node, nir.AvgPool2d):
    return pool2d(x, node.kernel_size, node.stride, node.padding, True), None
  if isinstance(node, nir.SumPool2d):
    return pool2d(x, node.kernel_size, node.stride, node.padding, False), None
  if isinstance(node, nir.Flatten):
    return flatten(x, node.start_dim, node.end_dim), None
  if isinstance(node, nir.Threshold):
    return (x > _f64(node.threshold)).astype(np.float64), None
  if v is None:
    v = np.zeros_like(x)
  if isinstance(node, (nir.I, nir.IF)):
    v = v + dt * _f64(node.r) * x
  elif isinstance(node, (nir.LI, nir.LIF)):
    v = v + dt / _f64(node.tau) * (_f64(node.v_leak) - v + _f64(node.r) * x)
  else:
    raise ValueError(f"Node {name!r}: the reference simulator does not run "
                     f"{type(node).__name__} nodes.")
  if isinstance(node, (nir.I, nir.LI)):
    return v, v
  z = v > _f64(node.v_threshold)
  v = np.where(z, _f64(node.v_reset), v)
  return z.astype(np.float64), v
