"""The Vitis HLS / Vivado Tcl scripts and the Makefile, checked without vendor tools.

Every script must parse with tclsh. Each is then dry-run under tclsh with the vendor commands
stubbed out (logged, returning plausible values), which proves the scripts are well formed
beyond syntax and that they write exactly the files the runtime looks for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ternpynq.overlay.boards import load_board
from ternpynq.overlay.generate import generate, manifest_expectation
from ternpynq.overlay.paths import BITSTREAM_FILES, bitstream_paths, overlay_dir
from ternpynq.overlay.regmap import load_regmap

TCLSH = shutil.which("tclsh")
SCRIPTS = sorted((overlay_dir() / "scripts").glob("*.tcl"))
pytestmark = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed (apt install tcl)")

# Vendor commands become logged no-ops; the few whose results the scripts use get stand-ins.
STUBS = r"""
clock format [clock seconds]  ;# load Tcl's own clock library before `unknown` is replaced
set tpq_log [open [lindex $argv end] w]
set tpq_script [lindex $argv 0]
set argv [lrange $argv 1 end-1]
set argc [llength $argv]
proc unknown {args} {
    global tpq_log
    puts $tpq_log $args
    switch -- [lindex $args 0] {
        get_ipdefs {
            regexp {NAME == (\S+)} [lindex $args end] -> name
            return "xilinx.com:ip:$name:9.9"
        }
        get_property { return 100% }
        version { return 2099.1 }
        default { return "" }
    }
}
rename exit tpq_exit
proc exit {{code 0}} { global tpq_log; close $tpq_log; tpq_exit $code }
source $tpq_script
"""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_tcl_parses(script):
    check = "set f [open [lindex $argv 0]]; exit [expr {![info complete [read $f]]}]"
    result = subprocess.run(
        [TCLSH, "/dev/stdin", str(script)], input=check, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, f"{script.name}: unbalanced braces or quotes {result.stderr}"


def _dry_run(tmp_path: Path, script: str, args: list[str]) -> list[str]:
    driver = tmp_path / "driver.tcl"
    driver.write_text(STUBS)
    log = tmp_path / "calls.log"
    target = overlay_dir() / "scripts" / script
    proc = subprocess.run(
        [TCLSH, str(driver), str(target), *args, str(log)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return log.read_text().splitlines()


@pytest.mark.parametrize("name", ["pynq-z2", "zcu104"])
def test_hls_script_dry_run(tmp_path, name):
    board = load_board(name)
    gen = tmp_path / "gen"
    generate(board, gen)
    calls = _dry_run(tmp_path, "hls.tcl", [str(gen), str(tmp_path / "build"), "csim,csynth,export"])
    text = "\n".join(calls)
    vendor, library, ip, version = load_regmap().vlnv.split(":")
    assert f"set_part {board.part}" in text
    assert f"create_clock -period {1000 / board.clock_mhz:.3f}" in text
    assert f"-vendor {vendor} -library {library} -ipname {ip} -version {version}" in text
    assert f"csim_design -argv {gen / 'vectors.bin'}" in text
    assert "set_top tpq_layer" in text and "csynth_design" in text
    added = re.findall(r"add_files (?:-tb )?(\S+\.cpp)", text)
    assert added and all(Path(src).is_file() for src in added)
    # The Makefile hands Vivado the IP where this project and solution put it.
    assert f"open_project -reset {tmp_path / 'build' / 'hls_prj'}" in text
    assert "open_solution -reset sol" in text
    makefile = (overlay_dir() / "Makefile").read_text()
    assert "IP_REPO := $(BUILD)/hls_prj/sol/impl/ip" in makefile


@pytest.mark.parametrize("name", ["pynq-z2", "zcu104"])
def test_vivado_script_writes_what_the_runtime_expects(tmp_path, name):
    board = load_board(name)
    gen, build, out = tmp_path / "gen", tmp_path / "build", tmp_path / "out"
    generate(board, gen)
    impl = build / "vivado" / "tpq.runs" / "impl_1"
    handoff = build / "vivado" / "tpq.gen" / "sources_1" / "bd" / "tpq" / "hw_handoff"
    for folder, file in ((impl, "tpq_wrapper.bit"), (handoff, "tpq.hwh")):
        folder.mkdir(parents=True)
        (folder / file).write_text(file)
    calls = _dry_run(
        tmp_path, "vivado.tcl", [str(gen), str(build), str(tmp_path / "ip"), str(out), "abc123"]
    )
    text = "\n".join(calls)
    assert sorted(p.name for p in out.iterdir()) == sorted(BITSTREAM_FILES.values())
    assert {k: p.name for k, p in bitstream_paths(name).items()} == BITSTREAM_FILES
    manifest = json.loads((out / BITSTREAM_FILES["manifest"]).read_text())
    assert manifest_expectation(board).items() <= manifest.items()
    assert manifest["source_revision"] == "abc123" and manifest["clock_mhz"] == board.clock_mhz
    assert f"-part {board.part}" in text
    assert f"create_bd_cell -type ip -vlnv {load_regmap().vlnv} tpq_layer_0" in text
    clock_key = (
        "PCW_FPGA0_PERIPHERAL_FREQMHZ"
        if board.ps == "zynq7"
        else "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"
    )
    assert f"CONFIG.{clock_key} {board.clock_mhz:g}" in text
    for bundle in ("gmem_w", "gmem_i", "gmem_o", "gmem_r"):
        assert f"/tpq_layer_0/m_axi_{bundle}" in text
    assert "connect_bd_net tpq_layer_0/interrupt" not in text  # nets go through get_bd_pins
    assert "launch_runs impl_1 -to_step write_bitstream" in text


def test_makefile_targets_and_output_folder():
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    for name in ("pynq-z2", "zcu104"):
        proc = subprocess.run(
            [make, "-n", "-C", str(overlay_dir()), f"BOARD={name}", "all"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "scripts/hls.tcl" in proc.stdout and "scripts/vivado.tcl" in proc.stdout
        assert str(bitstream_paths(name)["bit"].parent) in proc.stdout
    bad = subprocess.run(
        [make, "-n", "-C", str(overlay_dir()), "BOARD=nope", "hls"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "unknown BOARD=nope" in bad.stderr
