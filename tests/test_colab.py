"""Every notebook in colab/ runs top to bottom (shell lines skipped)."""

import json
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "colab")
                   .glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
  namespace = {}
  for cell in json.loads(path.read_text())["cells"]:
    if cell["cell_type"] != "code":
      continue
    lines = [l for l in cell["source"] if not l.lstrip().startswith(("!", "%"))]
    exec(compile("".join(lines), f"{path.name}", "exec"), namespace)  # pylint: disable=exec-used
  assert namespace, "notebook has no code"
