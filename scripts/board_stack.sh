#!/usr/bin/env bash
# The board-stack test leg: the Python a PYNQ image ships (3.10, numpy < 2, Pillow 9, no torch,
# no onnxruntime), with the runtime dependencies installed at the floors pyproject.toml declares,
# the serve extra, and the test tools only. It runs the runtime, bundle, overlay (csim) and serve
# tests there; a test that needs an absent extra skips and names it (-rs lists them).
#   bash scripts/board_stack.sh      (quickstart.sh's test mode runs it after the main leg)
# Set TERNPYNQ_PY310 to a python3.10 interpreter if it is not on PATH or under pyenv; the leg
# fails, saying so, when it finds no Python 3.10.
set -euo pipefail
cd "$(dirname "$0")/.."

# Test tools the leg installs: what the tests import beyond the runtime and the serve extra.
test_tools=(pytest hypothesis safetensors openapi-spec-validator)
test_dirs=(tests/runtime tests/bundle tests/overlay tests/serve)
venv=.venv310

is_py310() { [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }
python=""
if [ -n "${TERNPYNQ_PY310:-}" ]; then
  candidates=("$TERNPYNQ_PY310")  # an explicit choice is the only one tried
else
  candidates=("$(command -v python3.10 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python
    /root/.pyenv/versions/3.10*/bin/python)
fi
for candidate in "${candidates[@]}"; do
  if [ -n "$candidate" ] && is_py310 "$candidate"; then python="$candidate"; break; fi
done
if [ -z "$python" ]; then
  echo "board-stack leg: FAILED: Python 3.10 not found (install it, e.g. 'pyenv install 3.10'," \
    "or set TERNPYNQ_PY310 to a python3.10)" >&2
  exit 1
fi
echo ">> board-stack leg on $("$python" -V) ($python)"

# The floors, read from pyproject.toml's dependencies ("numpy>=1.24" -> "numpy==1.24"), so the
# leg tests exactly what the package claims. Python 3.10 has no tomllib, hence the regex.
floors=$("$python" - <<'EOF'
import re
text = open("pyproject.toml").read()
deps = re.search(r"^dependencies = \[(.*?)\]", text, re.M | re.S).group(1)
for name, version in re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)"', deps):
    print(f"{name}=={version}")
EOF
)
[ -n "$floors" ] || { echo "board-stack leg: FAILED: no floors found in pyproject.toml" >&2; exit 1; }
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
printf '%s\n' "$floors" > "$constraints"

is_py310 "$venv/bin/python" || { rm -rf "$venv"; "$python" -m venv "$venv"; }
"$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" \
  -e '.[serve]' "${test_tools[@]}"
"$venv/bin/python" - "$constraints" <<'EOF'
import sys
from importlib.metadata import version

for line in open(sys.argv[1]).read().split():
    name, want = line.split("==")
    have = version(name)
    if have.split(".")[: len(want.split("."))] != want.split("."):
        sys.exit(f"board-stack leg: FAILED: {name} {have} installed, the floor is {want}")
    print(f"   {name} {have} (floor {want})")
EOF
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "${test_dirs[@]}"
echo ">> board-stack leg passed"
