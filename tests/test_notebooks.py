"""Every notebook's code cells run top to bottom off-board (headless matplotlib)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
# listed by name: a missing notebook fails, not skips
EXPECTED = [
    "01-classify-on-pynq.ipynb",
    "02-imagenet-photos.ipynb",
    "03-compress-walkthrough.ipynb",
]


def test_notebook_list_is_complete():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_and_is_committed_clean(name, tmp_path):
    nb = json.loads((NOTEBOOKS / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    script = tmp_path / "notebook.py"
    script.write_text("\n\n".join("".join(c["source"]) for c in code))
    env = dict(os.environ, MPLBACKEND="Agg")
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "selftest" in out.stdout.lower() or "pass" in out.stdout.lower()


def test_notebooks_are_a_package_for_pynq_get_notebooks():
    # `pynq get-notebooks` imports each "pynq.notebooks" entry point and copies its folder
    tomllib = pytest.importorskip("tomllib")
    import ternpynq.notebooks

    folder = Path(ternpynq.notebooks.__file__).parent
    assert sorted(p.name for p in folder.glob("*.ipynb")) == EXPECTED
    meta = tomllib.loads((NOTEBOOKS.parent / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pynq.notebooks"] == {"ternpynq": "ternpynq.notebooks"}
    assert "notebooks/*.ipynb" in meta["tool"]["setuptools"]["package-data"]["ternpynq"]
