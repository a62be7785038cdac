r"""Optional: run our exported NIR graph in snnTorch, an independent simulator.

Never imported by the library or the tests. It needs torch, snnTorch,
NIRTorch and nir, which the project does not depend on, so run it in a
separate virtual environment::

  python -m venv /tmp/nirvenv
  /tmp/nirvenv/bin/pip install "torch==2.13.0+cpu" snntorch==1.0.0 \
      nirtorch==2.6 nir==1.0.8 numpy
  python -m experiments.export --workdir /tmp/snn_sparse/digits_convnet_avg \
      --format nir --out /tmp/snn_sparse/avg.nir \
      --reference /tmp/snn_sparse/avg_reference.npz
  /tmp/nirvenv/bin/python experiments/peers/nir_snntorch.py \
      --nir /tmp/snn_sparse/avg.nir \
      --reference /tmp/snn_sparse/avg_reference.npz

The ``--reference`` file of ``experiments.export`` holds the test inputs in
NIR's layout, one per time step (``inputs`` ``[T, N, C, H, W]``), the labels,
and our model's per-step logits and the spikes of each of its neuron layers.
This script imports the graph with ``snntorch.import_nir.import_from_nir``,
runs it step by step, and prints how its spikes (per layer), logits and
predictions agree with ours, then one JSON line.

snnTorch's importer turns NIR's ``Flatten(start_dim=0)``, which NIR states per
sample, into ``torch.nn.Flatten(0, -1)`` on the batched tensor, which also
flattens the batch; so the graph runs one example at a time
(``--batch_size 1``, the default). A larger batch works for graphs without
a Flatten node.
"""

from __future__ import annotations

import argparse
import json
import time

import nir
import numpy as np
import snntorch as snn
from snntorch import import_nir, utils
import torch


def run(graph, inputs: np.ndarray, batch_size: int = 1):
  """Per-step outputs ``[T, N, ...]`` and the spikes of every snnTorch neuron
  module, keyed by its module name, of the imported ``graph``."""
  net = import_nir.import_from_nir(graph)
  net.eval()
  record = {}

  def hook(name):
    def fn(module, args, out):
      del module, args
      out = out[0] if isinstance(out, tuple) else out
      record.setdefault(name, []).append(out.detach().numpy().copy())
    return fn

  for name, module in net.named_modules():
    if isinstance(module, snn.SpikingNeuron):
      module.register_forward_hook(hook(name))
  steps, n = inputs.shape[:2]
  outputs, spikes = [], {}
  with torch.no_grad():
    for start in range(0, n, batch_size):
      x = torch.from_numpy(inputs[:, start:start + batch_size])
      b = x.shape[1]
      utils.reset(net)
      record.clear()
      per_step = []
      for t in range(steps):
        out = net(x[t])
        out = out[0] if isinstance(out, tuple) else out
        per_step.append(out.detach().numpy().reshape(b, -1))
      outputs.append(np.stack(per_step))
      for name, values in record.items():
        spikes.setdefault(name, []).append(
            np.stack(values).reshape((steps, b, -1)))
  return (np.concatenate(outputs, 1),
          {k: np.concatenate(v, 1) for k, v in spikes.items()})


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--nir", required=True, help="the exported .nir file")
  parser.add_argument("--reference", required=True,
                      help="the .npz of experiments.export --reference")
  parser.add_argument("--batch_size", type=int, default=1)
  parser.add_argument("--threads", type=int, default=2)
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  ref = np.load(args.reference)
  inputs = ref["inputs"].astype(np.float32)
  steps, n = inputs.shape[:2]
  start = time.perf_counter()
  try:
    out, spikes = run(nir.read(args.nir), inputs, args.batch_size)
  except Exception as e:  # pylint: disable=broad-except
    print(json.dumps({"peer": f"snntorch {snn.__version__}",
                      "error": f"{type(e).__name__}: {e}"}))
    raise SystemExit(f"snnTorch could not import or run {args.nir}: "
                     f"{type(e).__name__}: {e}")
  seconds = time.perf_counter() - start
  ours = ref["logits"]
  layers = {}
  for key in ref.files:
    if not key.startswith("spikes/"):
      continue
    name = key[len("spikes/"):]
    module = name.replace(".", "_")  # NIRTorch's module names
    if module not in spikes:
      raise SystemExit(f"snnTorch built no neuron module {module!r} for our "
                       f"layer {name}; it has {sorted(spikes)}.")
    a = ref[key].reshape(steps, n, -1).astype(np.float32)
    layers[name] = {"spikes": int(a.sum()),
                    "mismatches": int(np.sum(spikes[module] != a))}
  pred_theirs = np.argmax(out.mean(0), -1)
  pred_ours = np.argmax(ours.mean(0), -1)
  result = {
      "peer": f"snntorch {snn.__version__}, torch {torch.__version__}",
      "examples": int(n), "time_steps": int(steps),
      "spikes": sum(v["spikes"] for v in layers.values()),
      "spike_mismatches": sum(v["mismatches"] for v in layers.values()),
      "layers": layers,
      "max_abs_logit_diff": float(np.max(np.abs(out - ours))),
      "prediction_agreement": float(np.mean(pred_theirs == pred_ours)),
      "test_accuracy_ours": float(np.mean(pred_ours == ref["labels"])),
      "test_accuracy_snntorch": float(np.mean(pred_theirs == ref["labels"])),
      "seconds": seconds}
  print(f"snnTorch on {n} test examples, T={steps}: "
        f"{result['spike_mismatches']} of {result['spikes']} spikes differ; "
        f"max |logit diff| {result['max_abs_logit_diff']:.3g}; predictions "
        f"agree on {result['prediction_agreement']:.4f}; test accuracy "
        f"{result['test_accuracy_ours']:.4f} (ours) vs "
        f"{result['test_accuracy_snntorch']:.4f} (snnTorch).")
  for name, layer in layers.items():
    print(f"  {name}: {layer['spikes']} spikes, {layer['mismatches']} differ")
  print(json.dumps(result))


if __name__ == "__main__":
  main()
