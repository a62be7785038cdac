"""The README's promises: its test command is CI's, and its example runs."""

import pathlib
import re

import jax
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme():
  return (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
  commands = re.findall(r"^(pip install .*pytest.*)$", _readme(), re.M)
  assert len(commands) == 1, commands
  ci = (ROOT / ".ci" / "run").read_text().splitlines()
  assert commands[0] in ci


def test_readme_python_example_runs():
  blocks = re.findall(r"```python\n(.*?)```", _readme(), re.S)
  assert blocks
  namespace = {}
  exec(compile(blocks[0], "README.md", "exec"), namespace)  # pylint: disable=exec-used
  assert namespace["logits"].shape == (4, 8, 10)
  assert int(namespace["state"].step) == 1


def _section_blocks(title):
  section = _readme().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```python\n(.*?)```", section, re.S)


def test_own_training_loop_example_runs(capsys):
  loop, custom = _section_blocks("Use it in your own training loop")
  namespace = {}
  exec(compile(loop, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  printed = capsys.readouterr().out.splitlines()
  assert [line.split(":")[0] for line in printed] == ["iteration 1",
                                                      "iteration 2"]
  density = [float(line.rsplit(" ", 1)[1]) for line in printed]
  assert 0.0 < density[1] < density[0] < 0.3  # two net prunes from 0.3
  masks = namespace["sparse"].masks
  for w, m in zip(jax.tree.leaves(namespace["params"]),
                  jax.tree.leaves(masks, is_leaf=lambda x: x is None)):
    if m is not None:
      assert not np.any(np.asarray(w)[~np.asarray(m)])  # inactive: exactly 0
  namespace = {}
  exec(compile(custom, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  from snn_sparse import sparsity  # pylint: disable=import-outside-toplevel
  algo = sparsity.from_config({"algorithm": "linear_dst", "rewire_every": 7},
                              total_steps=100, steps_per_iteration=50)
  assert algo.name == "linear_dst" and algo.is_rewire_step(7)
  assert not algo.is_rewire_step(49)  # the iteration's quiet steps
