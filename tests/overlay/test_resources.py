"""Resource model: arrays read from the HLS sources, memory mapping by hand, the committed
yosys calibration (re-measured when yosys is installed) and the re-sized boards' limits."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from ternpynq.overlay.boards import load_board
from ternpynq.overlay.calibrate import calibrate, parse_stat
from ternpynq.overlay.hls_arrays import ArraySourceError, banks, read_arrays, synthesis_sources
from ternpynq.overlay.regmap import load_regmap
from ternpynq.overlay.resources import (
    CalibrationError,
    breakdown,
    interfaces,
    load_calibration,
    memory_cost,
    resources,
)

BOARDS = ("pynq-z2", "zcu104")
LUT_LIMIT = {"pynq-z2": 0.85, "zcu104": 0.70}  # issue 8 item 4
CONTROL_ROW = "control FSMs and address counters"
KEYWORDS = {"return", "else", "case", "delete", "throw", "goto"}
QUALIFIERS = {"static", "const", "constexpr", "volatile", "thread_local", "extern"}


def _declared_names(text: str) -> set[str]:
    """Array names a plain reading of C++ finds: ``<type> name[`` at a statement's start (after
    any ``;``, ``{`` or ``}``), outside parentheses, so function parameters do not count, and
    outside ``#ifndef __SYNTHESIS__`` blocks."""
    names, csim = set(), False
    for raw in text.splitlines():
        line = raw.split("//")[0]
        if line.strip() == "#ifndef __SYNTHESIS__":  # C-simulation-only code is no hardware
            csim = True
        elif line.strip() in ("#else", "#endif"):
            csim = False
        if csim or line.lstrip().startswith("#"):
            continue
        for stmt in re.split(r"[;{}]", line):
            if "(" in stmt.split("[")[0]:
                continue
            for m in re.finditer(r"([\w:>]+)\s+([A-Za-z_]\w*)\s*\[", stmt):
                if m.group(1) not in KEYWORDS and set(stmt[: m.start()].split()) <= QUALIFIERS:
                    names.add(m.group(2))
                    for extra in re.findall(r",\s*([A-Za-z_]\w*)\s*\[", stmt[m.end() :]):
                        names.add(extra)
    return names


@pytest.mark.parametrize("name", BOARDS)
def test_every_array_in_the_sources_is_counted(name):
    board = load_board(name)
    counted = {row["name"] for row in breakdown(board)}
    declared = set()
    for path in synthesis_sources():
        declared |= _declared_names(path.read_text())
    assert declared, "no arrays found: the scan itself is broken"
    assert declared <= counted, f"arrays the resource model misses: {declared - counted}"


def _tree(tmp_path, source: str):
    (tmp_path / "hls" / "k").mkdir(parents=True)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "hls.tcl").write_text("add_files -tb [file join $d k_tb.cpp]\n")
    (tmp_path / "hls" / "k" / "k.cpp").write_text(source)
    (tmp_path / "hls" / "k" / "k_tb.cpp").write_text("static int tb_only[1000000];\n")
    return tmp_path


def test_arrays_sized_and_mapped_by_hand(tmp_path, small_board):
    # small board: P = 4, g = 8, TPQ_IBUF_READ = 8
    src = """
constexpr int LANES = TPQ_P * TPQ_G;   // 32
using word_t = ap_uint<72>;
static word_t wide[TPQ_G * 512];  // 4096 x 72 bits
#pragma HLS BIND_STORAGE variable=wide type=ram_2p impl=uram
static int16_t line[TPQ_IBUF_READ * 1024];
#pragma HLS ARRAY_PARTITION variable=line type=cyclic factor=TPQ_IBUF_READ dim=1
int32_t acc[2][TPQ_P], tmp[LANES] = {0};  // two declarators, one initialized
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=0
static uint8_t packed[64][16];
#pragma HLS ARRAY_RESHAPE variable=packed type=complete dim=2
void f(int32_t x[TPQ_P][TPQ_G]) { return; }
enum Loop : int { L_A = 2, L_B, N_LOOPS };
constexpr uint32_t DEPTH[N_LOOPS] = {
    1, 2, 3, 4};
static int32_t sums[(TPQ_P + 3) / 4][TPQ_G];
#ifndef __SYNTHESIS__
static uint64_t csim_only[1 << 20];
#else
static uint64_t synth_only[2];
#endif
"""
    got = {a.name: a for a in read_arrays(small_board, _tree(tmp_path, src))}
    # not the argument x, the testbench's array or the C-simulation-only one
    assert set(got) == {"wide", "line", "acc", "tmp", "packed", "DEPTH", "sums", "synth_only"}
    assert got["DEPTH"].dims == (4,) and got["sums"].dims == (1, 8)
    assert banks(got["wide"]) == (1, 4096, 72)
    assert memory_cost(got["wide"])["uram"] == 1
    assert banks(got["line"]) == (8, 1024, 16)  # 8 banks of 1024 x 16 bits: 1 RAMB18 each
    assert memory_cost(got["line"])["bram36"] == 4.0
    assert banks(got["acc"]) == (8, 1, 32)
    assert (
        memory_cost(got["acc"])["ff"] == 8 * 32 and memory_cost(got["acc"])["kind"] == "registers"
    )
    assert banks(got["tmp"]) == (1, 32, 32)  # 1024 bits: LUTRAM, RAM32M holds 32 x 6
    assert memory_cost(got["tmp"])["lut"] == 4 * 6
    assert banks(got["packed"]) == (1, 64, 128)  # reshape widens instead of banking
    assert memory_cost(got["packed"])["kind"] == "bram"


def test_an_array_that_cannot_be_sized_names_file_and_line(tmp_path, small_board):
    with pytest.raises(ArraySourceError, match=r"k.cpp:2: unknown name TPQ_NOPE"):
        read_arrays(small_board, _tree(tmp_path, "\nstatic int buf[TPQ_NOPE];\n"))
    with pytest.raises(ArraySourceError, match=r"k.cpp:1: unknown element type 'mystery_t'"):
        read_arrays(small_board, _tree(tmp_path / "b", "static mystery_t buf[4];\n"))


def test_parse_stat_sorts_cells_by_kind():
    text = """
     CARRY4                         46
     FDRE                          182
     FDSE                            2
     LUT2                          115
     LUT6                          768
     LUT6_2                          3
     MUXF7                         282
     DSP48E1                         5
     RAMB18E1                        1
"""
    got = parse_stat(text)
    assert got == {"lut": 886, "ff": 184, "carry": 46, "muxf": 282, "dsp": 5, "bram36": 0,
                   "bram18": 1}  # fmt: skip


def test_calibration_for_another_geometry_is_refused(tmp_path):
    board = load_board("pynq-z2")
    data = load_calibration(board)
    data["geometry"]["g"] = board.g * 2
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="make -C overlay BOARD=pynq-z2 yosys"):
        load_calibration(board, path)
    with pytest.raises(CalibrationError, match="make -C overlay BOARD=pynq-z2 yosys"):
        load_calibration(board, tmp_path / "missing.json")


@pytest.mark.parametrize("name", BOARDS)
def test_resized_boards_fit_their_parts(name):
    board = load_board(name)
    use = resources(board)
    assert use["lut"]["used"] <= LUT_LIMIT[name] * use["lut"]["capacity"]
    for kind in ("ff", "dsp", "bram36", "uram"):
        assert use[kind]["used"] <= use[kind]["capacity"], kind
    rows = breakdown(board)
    pe_lut = sum(r["lut"] for r in rows if r["kind"] == "yosys")
    assert pe_lut > 0.3 * use["lut"]["used"]  # the measured PE array is the bulk, not a rounding


@pytest.mark.skipif(
    shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)"
)
@pytest.mark.parametrize("name", BOARDS)
def test_committed_calibration_reproduces_with_yosys(name):
    board = load_board(name)
    committed = load_calibration(board)
    assert "tpq_dw" in committed["per_array"], f"run make -C overlay BOARD={name} yosys"
    fresh = calibrate(
        board, encodings=(committed["encoding"],), dw_encodings=(committed["dw_encoding"],)
    )
    assert fresh["per_array"].keys() == committed["per_array"].keys()
    for group in ("per_pe", "per_array"):
        for module, cells in committed[group].items():
            for kind in ("lut", "ff", "dsp"):
                want, got = cells[kind], fresh[group][module][kind]
                assert abs(got - want) <= 0.05 * want, f"{module} {kind}: {got} vs {want}"


def test_interfaces_from_the_register_map_and_the_m_axi_pragmas(tmp_path, small_board):
    src = """
#pragma HLS INTERFACE mode=m_axi port=a bundle=gmem_a offset=slave max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=b bundle=gmem_a offset=slave max_read_burst_length=64
#pragma HLS INTERFACE mode=m_axi port=c bundle=gmem_c offset=slave
#pragma HLS INTERFACE mode=s_axilite port=c bundle=control offset=0x40
"""
    rows = {r["name"]: r for r in interfaces(small_board, _tree(tmp_path, src))}
    assert set(rows) == {"s_axilite control", "m_axi gmem_a", "m_axi gmem_c", CONTROL_ROW}
    # gmem_a: its two ports share one read buffer of 16 outstanding x 64 beats of the 32-bit
    # port = 1024 x 32 bits: one BRAM36
    assert rows["m_axi gmem_a"]["bram36"] == 1.0
    # gmem_c: the default 16 x 16 beats = 256 x 32 bits: one RAMB18
    assert rows["m_axi gmem_c"]["bram36"] == 0.5
    words = sum(r.width // 32 for r in load_regmap().registers)
    assert rows["s_axilite control"]["ff"] == 32 * words
