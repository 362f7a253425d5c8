"""The CLI as a user drives it: real subprocesses, one-line errors, no tracebacks."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ternpynq.bundle.stats import model_stats


def ternpynq(*args):
    return subprocess.run(
        [sys.executable, "-m", "ternpynq.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        path
    )
    return path


def test_inspect_reports_compression(resnet20_path, resnet20_bundle):
    out = ternpynq("inspect", resnet20_path, "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["cr"] == pytest.approx(model_stats(resnet20_bundle)["cr"])
    assert info["cr"] == pytest.approx(16 / (info["density"] * (1 - info["s_min"])))
    assert info["file_bytes"] == resnet20_path.stat().st_size
    text = ternpynq("inspect", resnet20_path)
    assert "PE-wise CR" in text.stdout and "layer3.2.conv2" in text.stdout


def test_classify_json(resnet20_path, image):
    out = ternpynq("classify", image, "--model", resnet20_path, "--json", "--top", "2")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["backend"] == "emu"
    assert [len(r["top"]) for r in result["results"]] == [2]


@pytest.mark.parametrize("case", ["truncated", "flipped", "missing", "text"])
def test_bad_model_files_give_one_line(tmp_path, resnet20_path, image, case):
    blob = resnet20_path.read_bytes()
    bad = tmp_path / "bad.tpq"
    if case == "truncated":
        bad.write_bytes(blob[: len(blob) // 2])
    elif case == "flipped":
        flipped = bytearray(blob)
        flipped[12] ^= 0xFF
        bad.write_bytes(bytes(flipped))
    elif case == "text":
        bad.write_text("hello")
    for args in (("inspect", bad), ("classify", image, "--model", bad)):
        out = ternpynq(*args)
        assert out.returncode == 1
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_bad_image_is_reported_and_others_still_classified(resnet20_path, image, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    out = ternpynq("classify", junk, image, "--model", resnet20_path, "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    results = json.loads(out.stdout)["results"]
    assert "not a readable image" in results[0]["error"] and "top" in results[1]


def test_help_everywhere():
    for args in ((), ("inspect",), ("classify",)):
        out = ternpynq(*args, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout


def _container(header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header


def _one_line_failure(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "blob",
    [
        _container(b"[" * 200_000 + b"]" * 200_000),  # nested header: RecursionError before
        _container(
            json.dumps({"__metadata__": {"ternpynq": "[" * 200_000 + "]" * 200_000}}).encode()
        ),
        _container(
            b'{"a":{"dtype":"U8","shape":[' + b"9" * 40 + b'],"data_offsets":[0,0]}}'
        ),  # a huge shape integer: OverflowError before
        _container(b'{"a":{"dtype":"U8","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,0]}}'),
    ],
    ids=["nested-header", "nested-metadata", "huge-shape", "huge-shape-digits"],
)
def test_hostile_bundle_headers_give_one_line(tmp_path, blob):
    bad = tmp_path / "bad.tpq"
    bad.write_bytes(blob)
    _one_line_failure(ternpynq("inspect", bad))


def test_devices_and_directories_are_not_read(tmp_path, image):
    _one_line_failure(ternpynq("inspect", "/dev/zero"))
    _one_line_failure(ternpynq("inspect", tmp_path))
    out = ternpynq("classify", "/dev/zero", image, "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    first = json.loads(out.stdout)["results"][0]
    assert first["error"] == "/dev/zero: not a regular file"


def test_old_bundles_load_with_a_one_line_warning(tmp_path, resnet20_path):
    header_len = int.from_bytes(resnet20_path.read_bytes()[:8], "little")
    header = json.loads(resnet20_path.read_bytes()[8 : 8 + header_len])
    meta = json.loads(header["__metadata__"]["ternpynq"])
    meta["version"] = 1
    header["__metadata__"] = {"ternpynq": json.dumps(meta)}  # version 1 had no checksum
    old = tmp_path / "old.tpq"
    old.write_bytes(
        _container(json.dumps(header).encode()) + resnet20_path.read_bytes()[8 + header_len :]
    )
    out = ternpynq("inspect", old)
    assert out.returncode == 0 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("ternpynq: warning: bundle format version 1 has no checksum")


def test_export_refuses_files_that_are_not_checkpoints(tmp_path, resnet20_path):
    torch = pytest.importorskip("torch")
    marker = {"format": "ternpynq.checkpoint/1"}
    fields = {
        "train_config": "{}",
        "pe_config": "{}",
        "labels": "[]",
        "stage": "final",
        "model": {"nonsense": torch.zeros(3)},
    }
    cases = {
        "bundle.pt": None,  # a .tpq bundle, not a checkpoint
        "list.pt": [1, 2],
        "marker-only.pt": marker,
        "no-channels.pt": {**marker, **fields, "spec": "{}"},
        "wrong-weights.pt": {**marker, **fields, "spec": '{"channels": 1}'},
    }
    for name, payload in cases.items():
        path = tmp_path / name
        if payload is None:
            path.write_bytes(resnet20_path.read_bytes())
        else:
            torch.save(payload, path)
        out = ternpynq("export", path, "--out", tmp_path / "x.tpq")
        _one_line_failure(out)
        assert str(path) in out.stderr, name
