"""``ternpynq doctor`` off-board and on a stand-in board (fake pynq, a bitstreams/ folder in
tmp_path): ready when everything a board user needs is there, exit 1 with a fix otherwise."""

from __future__ import annotations

import json
import sys

import pytest
from fake_pynq import make_pynq, write_bitstream_folder

from ternpynq.bundle import save
from ternpynq.cli import main
from ternpynq.overlay import doctor
from ternpynq.overlay.backends import BOARD_ENV
from ternpynq.overlay.boards import load_board
from ternpynq.overlay.paths import BITSTREAM_ENV
from ternpynq.overlay.regmap import load_regmap
from ternpynq.runtime.synthetic import random_bundle

RM = load_regmap()


def statuses(report: doctor.Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    return code, capsys.readouterr().out


@pytest.fixture
def off_board(monkeypatch, tmp_path):
    """No board anywhere: no variables, no device tree, no ImageNet bundle, no pynq."""
    for var in (BOARD_ENV, "BOARD", "XILINX_XRT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(doctor, "DEVICE_TREE_BOARD", tmp_path / "no-device-tree")
    monkeypatch.setattr(doctor, "IMAGENET_MODEL", tmp_path / "imagenet.tpq")
    monkeypatch.setenv(BITSTREAM_ENV, str(tmp_path / "bitstreams"))
    monkeypatch.delitem(sys.modules, "pynq", raising=False)
    return tmp_path


@pytest.fixture
def board(off_board, monkeypatch):
    """A PYNQ-Z2 as its image presents it, with a matching bitstream and both bundles."""
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    monkeypatch.setenv("XILINX_XRT", "/usr")
    monkeypatch.setitem(sys.modules, "pynq", make_pynq(RM.vlnv, RM))
    real_version = doctor.dist_version
    monkeypatch.setattr(
        doctor, "dist_version", lambda d: "3.0.1" if d == "pynq" else real_version(d)
    )
    paths = write_bitstream_folder("pynq-z2", built_utc="2026-01-01T00:00Z")
    save(random_bundle("tiny", seed=0), doctor.IMAGENET_MODEL)
    return paths


def test_off_board_is_ready_without_board_things(off_board, capsys):
    report = doctor.diagnose()
    assert report.ready and not report.on_board and report.board is None
    assert report.auto in ("onnx", "emu") and report.backends["emu"]
    s = statuses(report)
    assert s["Fashion-MNIST model"] == "ok"
    assert s["ImageNet model"] == s["bitstream"] == s["pynq"] == "note"  # not needed here
    code, out = run_cli(capsys)
    assert code == 0 and out.startswith("ternpynq doctor (off-board)")
    assert out.rstrip().endswith("doctor: ready")
    assert "pynq" not in sys.modules  # doctor never imports pynq


def test_a_ready_board(board, capsys):
    report = doctor.diagnose()
    assert report.ready, doctor.render(report)
    assert report.on_board and report.board == "pynq-z2" and report.auto == "pynq"
    assert all(c.status == "ok" for c in report.checks)
    code, out = run_cli(capsys, "--json")
    data = json.loads(out)
    assert code == 0 and data["ready"] and data["auto"] == "pynq" and data["backends"]["pynq"]
    by_name = {c["name"]: c for c in data["checks"]}
    assert "BOARD says 'Pynq-Z2'" in by_name["board"]["detail"]
    geometry = load_board("pynq-z2")
    assert by_name["board file"]["detail"].endswith(
        f"P={geometry.P}, g={geometry.g}, {geometry.clock_mhz:g} MHz"
    )
    assert str(board["bit"]) in by_name["bitstream"]["detail"]
    assert "manifest matches" in by_name["bitstream"]["detail"]


def test_a_board_without_its_bitstream(board, capsys):
    board["bit"].unlink()
    code, out = run_cli(capsys)
    assert code == 1 and "ternpynq doctor (on a board: pynq-z2)" in out
    assert "FAIL  bitstream" in out and "ternpynq.bit missing in" in out
    assert "fix: build it: make -C overlay BOARD=pynq-z2 on a PC with Vivado" in out
    assert "FAIL  auto" in out and "picks " in out  # auto falls back, which a board must not
    assert out.rstrip().endswith("doctor: 2 problem(s) to fix")


def test_a_bitstream_built_for_another_geometry(board):
    manifest = json.loads(board["manifest"].read_text())
    board["manifest"].write_text(json.dumps(dict(manifest, g=16)))
    report = doctor.diagnose()
    bit = next(c for c in report.checks if c.name == "bitstream")
    assert bit.status == "fail" and "g is 16, the runtime expects 64" in bit.detail
    assert bit.fix.startswith("rebuild it from these sources: make -C overlay")


def test_board_needs_pynq_xrt_and_the_imagenet_bundle(board, monkeypatch):
    monkeypatch.setattr(doctor, "dist_version", lambda d: None if d == "pynq" else "99.0")
    monkeypatch.delenv("XILINX_XRT")
    doctor.IMAGENET_MODEL.unlink()
    report = doctor.diagnose()
    fails = {c.name: c.fix for c in report.checks if c.status == "fail"}
    assert fails.keys() == {"pynq", "XRT", "ImageNet model"}
    assert "pynq_venv.sh" in fails["pynq"] and "xrt_setup.sh" in fails["XRT"]


def test_an_unknown_board_named_by_the_device_tree(off_board):
    doctor.DEVICE_TREE_BOARD.write_bytes(b"ZCU111\0")
    report = doctor.diagnose()
    board = next(c for c in report.checks if c.name == "board")
    assert report.on_board and not report.ready and board.status == "fail"
    assert board.detail == "no board file matches (device tree says 'ZCU111')"
    assert board.fix == f"set {BOARD_ENV} to one of: pynq-z2, zcu104"


def test_explicit_board_off_board_checks_its_bitstream_folder(off_board, capsys):
    code, out = run_cli(capsys, "--board", "zcu104")
    assert code == 1 and "ternpynq doctor (off-board)" in out
    assert "zcu104 (--board)" in out and "make -C overlay BOARD=zcu104" in out
    code, out = run_cli(capsys, "--board", "nope")
    assert code == 1 and "unknown board 'nope'" in out


def test_a_damaged_bundle_fails_even_off_board(off_board):
    doctor.IMAGENET_MODEL.write_bytes(b"not a bundle")
    report = doctor.diagnose()
    imagenet = next(c for c in report.checks if c.name == "ImageNet model")
    assert imagenet.status == "fail" and "does not load" in imagenet.detail


def test_versions_below_the_declared_floor(off_board, monkeypatch):
    monkeypatch.setattr(doctor, "dist_version", lambda d: {"numpy": "1.21.6"}.get(d, "99.0"))
    monkeypatch.setattr(doctor, "declared_floor", lambda d: {"numpy": "1.24"}.get(d))
    report = doctor.diagnose()
    numpy = next(c for c in report.checks if c.name == "numpy")
    assert numpy.status == "fail" and numpy.detail == "1.21.6 (ternpynq needs >= 1.24)"
    assert numpy.fix == "pip install -U 'numpy>=1.24'"
    assert statuses(report)["Pillow"] == "ok"


def test_declared_floor_reads_the_installed_metadata(monkeypatch):
    requires = ["numpy>=1.24", "pillow>=9.1", 'pynq>=3.0; extra == "board"', "flask>=3.0"]
    monkeypatch.setattr(doctor.metadata, "requires", lambda name: requires)
    assert doctor.declared_floor("numpy") == "1.24"
    assert doctor.declared_floor("Pillow") == "9.1"
    assert doctor.declared_floor("pynq") == "3.0"
    assert doctor.declared_floor("torch") is None


def test_a_board_without_the_overlay_folder(board, monkeypatch, tmp_path):
    """A wheel install holds no overlay/ (board files, register map): the fix names the
    variable to set."""
    monkeypatch.setenv("TERNPYNQ_OVERLAY", str(tmp_path / "no-overlay"))
    report = doctor.diagnose()
    fails = {c.name: c for c in report.checks if c.status == "fail"}
    assert "board file" in fails and "TERNPYNQ_OVERLAY" in fails["board file"].fix
    assert not report.backends["pynq"] and not report.backends["csim"]
