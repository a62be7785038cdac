r"""Optional: train-step throughput of the same networks in SpikingJelly.

A reference point for ``experiments/benchmark.py``, never imported by the
library or the tests. It needs torch and SpikingJelly, which the project does
not depend on, so run it in a separate virtual environment::

  python -m venv /tmp/sjvenv
  /tmp/sjvenv/bin/pip install torch==2.13.0 spikingjelly==2.0.0 numpy
  /tmp/sjvenv/bin/python experiments/peers/spikingjelly_peer.py \
      --model resnet19 --batch_sizes 8,32 --time_steps 2 --repeats 5
  /tmp/sjvenv/bin/python experiments/peers/spikingjelly_peer.py \
      --model convnet --batch_sizes 128 --repeats 9

The networks match ``snn_sparse.models`` layer for layer: ResNet19 (conv3x3
128 stem, [3, 3, 2] basic blocks of width [128, 256, 512], strides [1, 2, 2],
global average pool, FC 256, FC classes; T=2 on 32x32x3), VGGSNN (64, 128,
P, 256, 256, P, 512, 512, P, 512, 512, P, FC; T=10 on 48x48x2), the small
convnet (conv3x3 32, BN, LIF, max pool; conv3x3 64, BN, LIF, max pool; FC
128, LIF; FC classes; T=4 on 28x28x1) and the MLP (FC 256, LIF, FC 128, LIF,
FC classes; T=4 on 28x28x1), with
multi-step LIF neurons (tau=2, decay_input=False, hard reset, sigmoid
surrogate alpha=4) and BatchNorm over the time-folded batch. Masks are not
applied (dense): XLA CPU and PyTorch CPU both run dense kernels, so the cost
is the same. One train step is forward, cross-entropy on the time-averaged
logits, backward and an SGD-momentum update; one inference step is the
forward pass in eval mode under ``torch.no_grad``. Prints one JSON line per
batch size with the median step times and samples/s of both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn
from spikingjelly.activation_based import functional, layer, neuron, surrogate


def lif():
  return neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0,
                        v_reset=0.0,
                        surrogate_function=surrogate.Sigmoid(alpha=4.0),
                        step_mode="m")


def conv_bn(cin, cout, kernel=3, stride=1):
  return nn.Sequential(
      layer.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False,
                   step_mode="m"),
      layer.BatchNorm2d(cout, step_mode="m"))


class BasicBlock(nn.Module):
  """conv-BN-LIF-conv-BN (+ 1x1 conv-BN shortcut) -> LIF, on [T, B, C, H, W]."""

  def __init__(self, cin, cout, stride):
    super().__init__()
    self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), lif(),
                              conv_bn(cout, cout, 3, 1))
    self.shortcut = (conv_bn(cin, cout, 1, stride)
                     if stride != 1 or cin != cout else nn.Identity())
    self.out = lif()

  def forward(self, x):
    return self.out(self.body(x) + self.shortcut(x))


class ResNet19(nn.Module):
  """[T, B, 3, 32, 32] -> [T, B, classes]."""

  def __init__(self, num_classes=10):
    super().__init__()
    blocks, cin = [], 128
    for size, width, stride in zip((3, 3, 2), (128, 256, 512), (1, 2, 2)):
      for i in range(size):
        blocks.append(BasicBlock(cin, width, stride if i == 0 else 1))
        cin = width
    self.features = nn.Sequential(conv_bn(3, 128), lif(), *blocks)
    self.head = nn.Sequential(layer.Linear(512, 256, step_mode="m"), lif(),
                              layer.Linear(256, num_classes, step_mode="m"))

  def forward(self, x):
    return self.head(self.features(x).mean((3, 4)))


class VGGSNN(nn.Module):
  """[T, B, 2, 48, 48] -> [T, B, classes]."""

  def __init__(self, num_classes=10):
    super().__init__()
    mods, cin = [], 2
    for item in (64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"):
      if item == "P":
        mods.append(layer.AvgPool2d(2, 2, step_mode="m"))
      else:
        mods += [conv_bn(cin, item), lif()]
        cin = item
    self.features = nn.Sequential(*mods)
    self.fc = layer.Linear(512 * 3 * 3, num_classes, step_mode="m")

  def forward(self, x):
    return self.fc(self.features(x).flatten(2))


class ConvNet(nn.Module):
  """[T, B, 1, 28, 28] -> [T, B, classes]: snn_sparse's ``convnet``."""

  def __init__(self, num_classes=10):
    super().__init__()
    self.features = nn.Sequential(
        conv_bn(1, 32), lif(), layer.MaxPool2d(2, 2, step_mode="m"),
        conv_bn(32, 64), lif(), layer.MaxPool2d(2, 2, step_mode="m"))
    self.head = nn.Sequential(layer.Linear(64 * 7 * 7, 128, step_mode="m"),
                              lif(),
                              layer.Linear(128, num_classes, step_mode="m"))

  def forward(self, x):
    return self.head(self.features(x).flatten(2))


class MLP(nn.Module):
  """[T, B, 1, 28, 28] -> [T, B, classes]: snn_sparse's ``mlp`` (256-128)."""

  def __init__(self, num_classes=10):
    super().__init__()
    self.net = nn.Sequential(
        layer.Linear(28 * 28, 256, step_mode="m"), lif(),
        layer.Linear(256, 128, step_mode="m"), lif(),
        layer.Linear(128, num_classes, step_mode="m"))

  def forward(self, x):
    return self.net(x.flatten(2))


# name: (network, input [C, H, W], default T, direct-encoded images?)
MODELS = {"resnet19": (ResNet19, (3, 32, 32), 2, True),
          "vggsnn": (VGGSNN, (2, 48, 48), 10, False),
          "convnet": (ConvNet, (1, 28, 28), 4, True),
          "mlp": (MLP, (1, 28, 28), 4, True)}


def time_train_step(model_name, batch_size, time_steps, repeats):
  cls, shape, _, images = MODELS[model_name]
  net = cls()
  opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
  x = torch.randn((batch_size,) + shape)
  labels = torch.randint(0, 10, (batch_size,))
  if images:  # direct encoding: repeat the image over T
    inputs = x.unsqueeze(0).repeat(time_steps, 1, 1, 1, 1)
  else:  # event frames [T, B, C, H, W]
    inputs = (torch.rand((time_steps, batch_size) + shape) < 0.1).float()

  def step():
    functional.reset_net(net)
    logits = net(inputs).mean(0)
    loss = nn.functional.cross_entropy(logits, labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

  def infer():
    with torch.no_grad():
      functional.reset_net(net)
      return net(inputs).mean(0).argmax(-1)

  net.train()
  seconds = _median_seconds(step, repeats)
  net.eval()
  eval_seconds = _median_seconds(infer, repeats)
  return {"peer": "spikingjelly", "model": model_name,
          "batch_size": batch_size, "time_steps": time_steps,
          "train_step_s": seconds, "train_samples_per_s": batch_size / seconds,
          "eval_step_s": eval_seconds,
          "eval_samples_per_s": batch_size / eval_seconds,
          "torch": torch.__version__, "threads": torch.get_num_threads()}


def _median_seconds(fn, repeats):
  fn()  # warm-up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", choices=sorted(MODELS), default="resnet19")
  parser.add_argument("--batch_sizes", default="8,32")
  parser.add_argument("--time_steps", type=int, default=None,
                      help="T (default: 2 for resnet19, 10 for vggsnn).")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  time_steps = args.time_steps or MODELS[args.model][2]
  for batch_size in map(int, args.batch_sizes.split(",")):
    print(json.dumps(time_train_step(args.model, batch_size, time_steps,
                                     args.repeats)), flush=True)


if __name__ == "__main__":
  main()
