r"""Export the trained sparse network of a workdir: a compressed file or NIR.

  python -m experiments.export --workdir DIR [--checkpoint best|latest] \
      --format sparse --out FILE.npz [--values float32|float16|int8]
  python -m experiments.export --workdir DIR [--checkpoint best|latest] \
      --format nir --out FILE.nir [--dt 1e-4] [--reference FILE.npz]

``--format sparse`` writes ``snn_sparse.export.save_sparse``'s file (bit-packed
masks plus the active values) and prints its bytes against the dense float32
parameter bytes, per layer and in total. It then loads the file back and
runs the model on the test split with the loaded and with the original
weights: float32 values must give bit-identical logits; for float16 and int8
it prints the largest logit difference and the test-accuracy change.

``--format nir`` writes ``snn_sparse.export.to_nir``'s graph with
``nir.write``, reads it back with ``nir.read``, runs the read-back graph in
the NumPy reference simulator (``snn_sparse.export.nir_reference``) on the
test split, and prints how its spikes, logits and predictions agree with the
JAX model's. ``--reference FILE.npz`` also writes the test inputs (NIR
layout, one per time step), labels, and the model's logits and spikes, for
``experiments/peers/nir_snntorch.py``.

Both end with one JSON line of the figures. ``--verify=false`` skips the
checks. The graph's input is the normalised input the model reads
(``snn_sparse.data.pipeline.normalize``).
"""

from __future__ import annotations

import json
import sys

from absl import app, flags
import jax
import numpy as np

from snn_sparse.data import pipeline
from snn_sparse.export import compressed, nir_graph, nir_verify
from snn_sparse.export import workdir as workdir_lib
from snn_sparse.export.nir_neurons import NIRExportError
from snn_sparse.sparsity.masks import apply_masks
from snn_sparse.training import steps as steps_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The training run's directory.")
flags.DEFINE_enum("checkpoint", "best", ["best", "latest"],
                  "best: the best iteration (best/); latest: checkpoints/.")
flags.DEFINE_enum("format", None, ["sparse", "nir"], "What to write.")
flags.DEFINE_string("out", None, "The file to write.")
flags.DEFINE_enum("values", "float32", list(compressed.VALUE_FORMATS),
                  "sparse: how the active weights are stored.")
flags.DEFINE_float("dt", 1e-4, "nir: NIR time per model step (snnTorch's "
                   "importer assumes 1e-4).")
flags.DEFINE_bool("verify", True, "Check the written file on the test split.")
flags.DEFINE_integer("examples", 0, "Test examples to verify on (0: all).")
flags.DEFINE_string("reference", None, "nir: also write the test inputs and "
                    "the model's logits and spikes to this .npz, for "
                    "experiments/peers/nir_snntorch.py.")
flags.mark_flags_as_required(["workdir", "format", "out"])


def test_inputs(restored, examples: int = 0):
  """The test split as model input ``[T, N, H, W, C]`` and labels ``[N]``."""
  config = restored.config
  xs, ys = [], []
  for batch in pipeline.eval_batches(
      config.data.name, split="test", batch_size=config.data.eval_batch_size,
      data_dir=config.data.data_dir, manual_dir=config.data.manual_dir,
      validation_fraction=config.data.validation_fraction):
    keep = batch["mask"] > 0
    xs.append(batch["input"][keep])
    ys.append(batch["label"][keep])
  x, y = np.concatenate(xs), np.concatenate(ys)
  if examples:
    x, y = x[:examples], y[:examples]
  return np.asarray(steps_lib.encode(x, config.time_steps)), y


def _logits(model, params, batch_stats, x, batch: int = 512) -> np.ndarray:
  apply = jax.jit(lambda p, s, x: model.apply(
      {"params": p, "batch_stats": s}, x, train=False))
  return np.concatenate([np.asarray(apply(params, batch_stats,
                                          x[:, i:i + batch]))
                         for i in range(0, x.shape[1], batch)], axis=1)


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
  return float(np.mean(np.argmax(logits.mean(0), -1) == labels))


def export_sparse(restored, out: str, values: str, verify: bool,
                  examples: int = 0) -> dict:
  """Writes the compressed file; returns the figures of the JSON line."""
  report = compressed.save_sparse(
      restored.params, restored.masks, restored.batch_stats, out,
      values=values, config=workdir_lib.model_config(restored))
  print(compressed.format_size_report(report))
  result = {"format": "sparse", **report}
  if not verify:
    return result
  params, masks, stats = compressed.load_sparse(out)
  x, y = test_inputs(restored, examples)
  effective = apply_masks(restored.params, restored.masks)
  before = _logits(restored.model, effective, restored.batch_stats, x)
  after = _logits(restored.model, apply_masks(params, masks), stats, x)
  result.update(
      test_examples=int(y.shape[0]),
      logits_bit_identical=bool(np.array_equal(before, after)),
      max_abs_logit_diff=float(np.max(np.abs(before - after))),
      logit_error=compressed.logit_error(before, after),
      logit_tolerance=compressed.LOGIT_TOLERANCE[values],
      test_accuracy=_accuracy(before, y),
      test_accuracy_loaded=_accuracy(after, y))
  result["test_accuracy_change"] = (result["test_accuracy_loaded"]
                                    - result["test_accuracy"])
  result["within_tolerance"] = (
      result["logits_bit_identical"] if values == "float32"
      else result["logit_error"] <= result["logit_tolerance"])
  same = ("bit-identical" if result["logits_bit_identical"] else
          f"mean |change| of the time-averaged logits "
          f"{100 * result['logit_error']:.2f}% of their spread (stated "
          f"tolerance {100 * result['logit_tolerance']:.0f}%), max per-step "
          f"|change| {result['max_abs_logit_diff']:.3g}")
  print(f"Loaded back ({values}) on {y.shape[0]} test examples: logits "
        f"{same}; test accuracy {result['test_accuracy']:.4f} -> "
        f"{result['test_accuracy_loaded']:.4f} "
        f"({result['test_accuracy_change']:+.4f}).")
  return result


def export_nir(restored, out: str, dt: float, verify: bool,
               examples: int = 0, reference: str | None = None) -> dict:
  """Writes the NIR graph; returns the figures of the JSON line."""
  import nir  # pylint: disable=g-import-not-at-top  (the optional [nir])
  variables = {"params": apply_masks(restored.params, restored.masks),
               "batch_stats": restored.batch_stats}
  graph = nir_graph.to_nir(restored.model, variables, restored.masks,
                           restored.info.input_shape, dt=dt)
  nir.write(out, graph)
  print(f"Wrote {out}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
        f"dt={dt:g}.")
  result = {"format": "nir", "file": out, "nodes": len(graph.nodes),
            "edges": len(graph.edges), "dt": dt}
  if not (verify or reference):
    return result
  x, y = test_inputs(restored, examples)
  if reference:
    logits, spikes = nir_verify.model_spikes(restored.model, variables, x)
    np.savez_compressed(
        reference, inputs=nir_verify.to_nir_input(x).astype(np.float32),
        labels=y, logits=logits,
        **{f"spikes/{k}": v.astype(np.uint8) for k, v in spikes.items()})
    print(f"Wrote {reference}: {y.shape[0]} test examples, the model's "
          "logits and spikes.")
  if verify:
    check = nir_verify.compare(nir.read(out), restored.model, variables, x)
    result.update(check)
    print("Read back and simulated (snn_sparse.export.nir_reference, "
          f"float64) on {check['examples']} test examples: "
          f"{check['spike_mismatches']} of "
          f"{check['spikes']} spikes differ; max |logit diff| "
          f"{check['max_abs_logit_diff']:.3g}; predictions agree on "
          f"{check['prediction_agreement']:.4f}.")
    for name, layer in check["layers"].items():
      print(f"  {name}: {layer['spikes']} spikes, {layer['mismatches']} "
            "differ")
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    restored = workdir_lib.restore(FLAGS.workdir, FLAGS.checkpoint)
    if FLAGS.format == "sparse":
      result = export_sparse(restored, FLAGS.out, FLAGS.values, FLAGS.verify,
                             FLAGS.examples)
    else:
      result = export_nir(restored, FLAGS.out, FLAGS.dt, FLAGS.verify,
                          FLAGS.examples, FLAGS.reference)
  except (NIRExportError, FileNotFoundError, compressed.SparseFileError) as e:
    print(f"experiments.export: {e}", file=sys.stderr)
    sys.exit(1)
  result.update(checkpoint=FLAGS.checkpoint, step=restored.step,
                workdir_iteration=restored.meta.get("iteration"))
  print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)
