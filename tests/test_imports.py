"""The runtime works with numpy and pillow alone: optional extras are never imported by it."""

import subprocess
import sys

OPTIONAL = ("torch", "onnxruntime", "onnx", "flask", "pynq", "safetensors", "tqdm", "matplotlib")

SCRIPT = f"""
import sys
for name in {OPTIONAL!r}:
    sys.modules[name] = None  # any import of it now raises ImportError
import numpy as np, ternpynq
from ternpynq.runtime.synthetic import random_bundle
from ternpynq.cli import build_parser
build_parser()
clf = ternpynq.Classifier(random_bundle("tiny"), backend="emu")
print(clf.logits(np.zeros((1, 1, 8, 8), np.int8)).shape)
"""


def test_runtime_needs_only_numpy_and_pillow():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 10)"


def test_cli_lists_every_command_without_importing_torch():
    script = (
        "import sys\nfrom ternpynq.cli import build_parser\n"
        "parser = build_parser()\n"
        "names = sorted(parser._subparsers._group_actions[0].choices)\n"
        "print(' '.join(names), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "classify",
        "compress",
        "convert",
        "doctor",
        "estimate",
        "evaluate",
        "export",
        "inspect",
        "selftest",
        "serve",
        "False",
    ]
