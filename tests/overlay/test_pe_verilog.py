"""The generated PE Verilog computes what the kernel's MAC computes (run with iverilog).

The reference here is the golden model's arithmetic written directly in numpy (lane trits times
activations, Horner across planes, int32 accumulate), not the generator's own structure, so a
wrong tree, encoding, sign extension or pipeline alignment fails.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from ternpynq.overlay.boards import load_board
from ternpynq.overlay.calibrate import cells_sim, synthesize
from ternpynq.overlay.pe_verilog import (
    ENCODINGS,
    clog2,
    modules,
    pe_module,
    requant_module,
    select_module,
    select_ways,
    wdec_module,
)
from ternpynq.runtime.requant import requantize

needs_iverilog = pytest.mark.skipif(
    shutil.which("iverilog") is None, reason="iverilog not installed (apt-get install iverilog)"
)
CODE = {0: 0, 1: 1, -1: 3}  # trit -> 2-bit code (the stream's two's complement encoding)


def _simulate(
    tmp_path, verilog: str, tb: str, rows: list[int], width: int, libs: tuple = ()
) -> list[int | None]:
    """Drive one ``width``-bit hex row per cycle into ``tb`` and return the printed outputs
    (None while the pipeline still holds unknown values)."""
    (tmp_path / "dut.v").write_text(verilog)
    (tmp_path / "tb.v").write_text(tb)
    (tmp_path / "vec.hex").write_text("".join(f"{r:0{-(-width // 4)}x}\n" for r in rows))
    exe = tmp_path / "sim"
    cmd = ["iverilog", "-o", str(exe), "tb.v", "dut.v", *map(str, libs)]
    subprocess.run(cmd, cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", str(exe)], cwd=tmp_path, check=True, capture_output=True)
    words = out.stdout.decode().split()
    return [None if any(c in w for c in "xXzZ") else int(w, 16) for w in words]


def _tb(ports: str, width: int, n: int, out: str) -> str:
    return f"""module tb;
  reg clk = 0; reg [{width - 1}:0] mem [0:{n - 1}]; reg [{width - 1}:0] v; integer i;
{ports}
  initial begin
    $readmemh("vec.hex", mem);
    for (i = 0; i < {n}; i = i + 1) begin
      v = mem[i]; #1 clk = 1; #1 clk = 0; $display("%h", {out});
    end
  end
endmodule
"""


@needs_iverilog
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("g,per_stage", [(8, 2), (16, 3), (4, 1)])
def test_pe_matches_ternary_mac(tmp_path, encoding, g, per_stage):
    _check_pe(tmp_path, g, *pe_module(g, per_stage, encoding))


@needs_iverilog
@pytest.mark.skipif(
    shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)"
)
@pytest.mark.parametrize("family,encoding", [("xc7", "ones"), ("xcup", "naive")])
def test_synthesized_pe_netlist_matches_ternary_mac(tmp_path, family, encoding):
    """What yosys counted is still the MAC: simulate the mapped LUT/CARRY/FF netlist (each
    family with the encoding its calibration keeps)."""
    g = 8
    verilog, latency = pe_module(g, 2, encoding)
    netlist = tmp_path / "net.v"
    synthesize(verilog, "tpq_pe", family, netlist=netlist)
    _check_pe(tmp_path, g, netlist.read_text(), latency, libs=(cells_sim(),))


def _check_pe(tmp_path, g: int, verilog: str, latency: int, libs: tuple = ()) -> None:
    rng = np.random.default_rng(g * 7 + latency)
    n = 120
    trits = rng.integers(-1, 2, (n, g))
    sgn = rng.integers(0, 2, n)
    x = np.where(sgn[:, None] == 1, rng.integers(-128, 128, (n, g)), rng.integers(0, 256, (n, g)))
    x[:4] = np.where(sgn[:4, None] == 1, -128, 255)  # extremes
    trits[:4] = -1
    first = rng.random(n) < 0.3
    first[0] = True
    run = 0
    for t in range(n):  # a lane word has at most MAX_T = 5 trit planes
        run = 1 if first[t] or run == 5 else run + 1
        first[t] = run == 1
    acc_in = rng.integers(-(2**31), 2**31, n)
    # reference: per-cycle sum, Horner part, acc_out = acc_in + part (int32 wrap)
    part, parts = 0, []
    for t in range(n):
        s = int((trits[t] * x[t]).sum())
        part = s if first[t] else 3 * part + s
        parts.append(part)
    nb = clog2(g + 1)
    width = 1 + 1 + nb + 2 * g + 8 * g + 32
    rows = []
    for t in range(n):
        code = sum(CODE[int(v)] << (2 * lane) for lane, v in enumerate(trits[t]))
        xs = sum((int(v) & 0xFF) << (8 * lane) for lane, v in enumerate(x[t]))
        nneg = int((trits[t] == -1).sum())
        row = int(first[t])
        for value, bits in ((sgn[t], 1), (nneg, nb), (code, 2 * g), (xs, 8 * g)):
            row = (row << bits) | int(value)
        rows.append((row << 32) | (int(acc_in[t]) & 0xFFFFFFFF))
    lo = 32 + 8 * g
    ports = f"""  wire [31:0] acc_out;
  tpq_pe dut(.clk(clk), .ce(1'b1), .first(v[{width - 1}]), .sgn(v[{width - 2}]),
    .nneg(v[{width - 3}:{lo + 2 * g}]), .code(v[{lo + 2 * g - 1}:{lo}]),
    .x(v[{lo - 1}:32]), .acc_in(v[31:0]), .acc_out(acc_out));"""
    got = _simulate(tmp_path, verilog, _tb(ports, width, n, "acc_out"), rows, width, libs)
    # acc_out after cycle t+latency-1's edge holds acc_in(t+latency-1) + part(t)
    for t in range(n - latency + 1):
        want = (int(acc_in[t + latency - 1]) + parts[t]) & 0xFFFFFFFF
        assert got[t + latency - 1] == want, f"cycle {t}"


@needs_iverilog
@pytest.mark.parametrize("ways", [1, 4, 5])
def test_select_picks_the_addressed_bank_or_zero_for_padding(tmp_path, ways):
    g = 4
    sb = clog2(ways)
    rng = np.random.default_rng(ways)
    n = 40
    banks = [int.from_bytes(rng.bytes(g * ways), "little") for _ in range(n)]
    sel = rng.integers(0, ways, n)
    pad = rng.random(n) < 0.2
    width = 1 + sb + 8 * g * ways
    rows = [
        (((int(p) << sb) | int(s)) << (8 * g * ways)) | b
        for p, s, b in zip(pad, sel, banks, strict=True)
    ]
    ports = f"""  wire [{8 * g - 1}:0] x;
  tpq_sel dut(.clk(clk), .ce(1'b1), .pad(v[{width - 1}]), .sel(v[{width - 2}:{8 * g * ways}]),
    .banks(v[{8 * g * ways - 1}:0]), .x(x));"""
    got = _simulate(tmp_path, select_module(g, ways), _tb(ports, width, n, "x"), rows, width)
    mask = (1 << (8 * g)) - 1
    want = [
        0 if p else (b >> (8 * g * int(s))) & mask for p, s, b in zip(pad, sel, banks, strict=True)
    ]
    assert got == want


@needs_iverilog
def test_wdec_counts_negative_lanes(tmp_path):
    g = 16
    rng = np.random.default_rng(2)
    trits = rng.integers(-1, 2, (30, g))
    rows = [sum(CODE[int(v)] << (2 * i) for i, v in enumerate(t)) for t in trits]
    ports = f"""  wire [{clog2(g + 1) - 1}:0] nneg;
  tpq_wdec dut(.clk(clk), .ce(1'b1), .code(v), .nneg(nneg));"""
    got = _simulate(tmp_path, wdec_module(g), _tb(ports, 2 * g, 30, "nneg"), rows, 2 * g)
    assert got == [int((t == -1).sum()) for t in trits]


def test_boards_generate_every_module_with_their_geometry():
    for name in ("pynq-z2", "zcu104"):
        board = load_board(name)
        mods = modules(board)
        assert set(mods) == {"tpq_pe", "tpq_sel", "tpq_wdec", "tpq_rq"}
        assert f"input [{2 * board.g - 1}:0] code" in mods["tpq_pe"]
        assert mods["tpq_sel"].count(": x <= banks[") == select_ways(board)
    with pytest.raises(ValueError, match="encoding"):
        pe_module(8, 2, "fancy")


@needs_iverilog
def test_requant_unit_matches_the_golden_requantize(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    acc = rng.integers(-(2**31), 2**31, n)
    acc[: n // 2] = rng.integers(-(2**20), 2**20, n // 2)  # typical magnitudes, not only clamps
    bias = rng.integers(-(2**24) + 1, 2**24, n)
    mult = rng.integers(-(2**23) + 1, 2**23, n)
    res = rng.integers(-128, 256, n)
    res_mult = int(rng.integers(-(2**23) + 1, 2**23))
    rows, want = [], []
    for i, shift in enumerate(rng.integers(0, 49, n)):
        has_res = int(i % 3 != 0)
        lo, hi = (-32768, 32767) if i % 2 else (0, 255)
        got_ref = requantize(
            np.array([[acc[i]]]), mult[i : i + 1], bias[i : i + 1], int(shift), lo, hi,
            np.array([[res[i]]]) if has_res else None, res_mult,
        )  # fmt: skip
        want.append(int(got_ref[0, 0]) & 0xFFFF)
        row = 0
        fields = ((has_res, 1), (shift, 6), (acc[i], 32), (bias[i], 25), (mult[i], 24))
        fields += ((res[i], 9), (res_mult, 24), (lo, 16), (hi, 16))
        for value, bits in fields:
            row = (row << bits) | (int(value) & ((1 << bits) - 1))
        rows.append(row)
    width = 1 + 6 + 32 + 25 + 24 + 9 + 24 + 16 + 16
    # the layer constants (shift, lo, hi, res_mult, has_res) change per row here, so hold each
    # row for the pipeline's 4 cycles and read the result when it has drained
    held = [r for r in rows for _ in range(4)]
    ports = """  wire [15:0] q;
  tpq_rq dut(.clk(clk), .ce(1'b1), .has_res(v[152]), .shift(v[151:146]), .acc(v[145:114]),
    .bias(v[113:89]), .mult(v[88:65]), .res(v[64:56]), .res_mult(v[55:32]), .lo(v[31:16]),
    .hi(v[15:0]), .q(q));"""
    got = _simulate(tmp_path, requant_module(), _tb(ports, width, len(held), "q"), held, width)
    assert [got[4 * i + 3] for i in range(n)] == want
