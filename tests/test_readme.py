"""The README's promises: its test command is CI's, and its example runs."""

import pathlib
import re

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
