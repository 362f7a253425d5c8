"""The board-stack leg (scripts/board_stack.sh) fails, saying why, when it has no Python 3.10."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "board_stack.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_leg_fails_loudly_without_python_310(tmp_path):
    env = dict(os.environ, TERNPYNQ_PY310=str(tmp_path / "no-python3.10"))
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "board-stack leg: FAILED: Python 3.10 not found" in proc.stderr
