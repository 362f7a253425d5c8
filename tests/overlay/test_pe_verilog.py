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

from ternpynq.overlay import pe_verilog
from ternpynq.overlay.boards import load_board
from ternpynq.overlay.calibrate import cells_sim, synthesize
from ternpynq.overlay.pe_verilog import (
    ENCODINGS,
    clog2,
    dw_module,
    levels_per_stage,
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
    .load(1'b0), .shift(1'b0), .banks(v[{8 * g * ways - 1}:0]), .x(x));"""
    got = _simulate(tmp_path, select_module(g, ways), _tb(ports, width, n, "x"), rows, width)
    mask = (1 << (8 * g)) - 1
    want = [
        0 if p else (b >> (8 * g * int(s))) & mask for p, s, b in zip(pad, sel, banks, strict=True)
    ]
    assert got == want


@needs_iverilog
def test_two_input_registers_load_the_next_word_and_shift_it_in(tmp_path):
    """The gather's two registers: ``load`` writes the word into the next-position register,
    ``shift`` moves that register into ``x`` (both from the values before the edge)."""
    g, n = 4, 40
    rng = np.random.default_rng(7)
    words = [int.from_bytes(rng.bytes(g), "little") for _ in range(n)]
    load, shift = rng.integers(0, 2, n), rng.integers(0, 2, n)
    load[0], shift[:2] = 1, (0, 1)  # x holds a loaded word from the second cycle on
    width = 2 + 8 * g
    rows = [(int(sh) << (8 * g + 1)) | (int(ld) << (8 * g)) | wd
            for wd, ld, sh in zip(words, load, shift, strict=True)]  # fmt: skip
    ports = f"""  wire [{8 * g - 1}:0] x;
  tpq_sel dut(.clk(clk), .ce(1'b1), .pad(1'b0), .sel(1'b0), .load(v[{8 * g}]),
    .shift(v[{8 * g + 1}]), .banks(v[{8 * g - 1}:0]), .x(x));"""
    got = _simulate(tmp_path, select_module(g, 1, 2), _tb(ports, width, n, "x"), rows, width)
    xn = x = None
    want = []
    for wd, ld, sh in zip(words, load, shift, strict=True):
        x, xn = (xn if sh else x), (wd if ld else xn)
        want.append(x)
    assert got[1:] == want[1:]


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
        assert set(mods) == {"tpq_pe", "tpq_sel", "tpq_wdec", "tpq_rq", "tpq_dw"}
        assert f"input [{2 * board.g - 1}:0] code" in mods["tpq_pe"]
        assert mods["tpq_dw"] == dw_module(board.g, levels_per_stage(board) < 3)[0]
        assert mods["tpq_dw"].count(": r <= a") == board.g  # one mux input per lane
        assert "tpq_rq" not in mods["tpq_dw"]  # the unit reuses requant unit 0
        assert mods["tpq_sel"].count(": word = banks[") == select_ways(board)
        assert "if (ce & shift) x <= xn;" in mods["tpq_sel"]  # the gather's two registers
    with pytest.raises(ValueError, match="encoding"):
        pe_module(8, 2, "fancy")
    with pytest.raises(ValueError, match="encoding"):
        dw_module(8, False, "fancy")


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


def _dw_blocks(rng, g: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Channel blocks of a depthwise run as (sgn, trits[T, taps, g], x[taps, g]): the extremes
    first (every weight -1 times -128 int8, then times 255 uint8: the 22-bit bound's edge),
    then random ones, T = 5 planes of 7 x 7 taps, and a smaller T = 3, 3 x 3 block."""
    blocks = [
        (1, -np.ones((5, 49, g), int), np.full((49, g), -128)),
        (0, -np.ones((5, 49, g), int), np.full((49, g), 255)),
    ]
    for sgn, t, taps in ((1, 5, 49), (0, 5, 49), (1, 3, 9), (0, 5, 49)):
        lo, hi = (-128, 128) if sgn else (0, 256)
        blocks.append((sgn, rng.integers(-1, 2, (t, taps, g)), rng.integers(lo, hi, (taps, g))))
    return blocks


def _check_dw(tmp_path, g: int, verilog: str, latency: int, libs: tuple = ()) -> None:
    """Drive blocks in the kernel's order (plane MSB first, taps inside a plane) with HOLD
    cycles of garbage data sprinkled in, sel random, then read every lane through the mux;
    each cycle's q must be the sel-th lane's depthwise sum so far, computed in closed form."""
    rng = np.random.default_rng(g + 11 * latency)
    sb = clog2(g)
    d = latency - 1
    ops, sgns, codes, xs, states = [], [], [], [], []  # states[k]: sums after k+1 ops

    def cycle(op, sgn, trits, x, state):
        ops.append(op)
        sgns.append(sgn)
        codes.append(sum(CODE[int(v)] << (2 * lane) for lane, v in enumerate(trits)))
        xs.append(sum((int(v) & 0xFF) << (8 * lane) for lane, v in enumerate(x)))
        states.append(state)

    readouts = []  # (cycle index of the first readout, final sums) per block
    for sgn, trits, x in _dw_blocks(rng, g):
        planes, taps = trits.shape[:2]
        prods = trits * x[None]  # int64: no wrap in the reference
        plane_sum = prods.sum(axis=1)
        for t in range(planes - 1, -1, -1):
            done = sum(3 ** (u - t) * plane_sum[u] for u in range(t + 1, planes))
            for j in range(taps):
                while len(states) > 0 and rng.random() < 0.1:  # a stall: acc holds
                    cycle(pe_verilog.DW_HOLD, int(rng.integers(0, 2)), rng.integers(-1, 2, g),
                          rng.integers(0, 256, g), states[-1])  # fmt: skip
                op = pe_verilog.DW_ADD if j else pe_verilog.DW_HORNER
                op = pe_verilog.DW_LOAD if j == 0 and t == planes - 1 else op
                cycle(op, sgn, trits[t, j], x[j], done + prods[t, : j + 1].sum(axis=0))
        final = sum(3**u * plane_sum[u] for u in range(planes))
        assert np.array_equal(states[-1], final)
        assert np.abs(final).max() < 2 ** (pe_verilog.DW_BITS - 1)
        readouts.append((len(states) + d, final))
        for _ in range(d + g):
            cycle(pe_verilog.DW_HOLD, 0, np.zeros(g, int), np.zeros(g, int), states[-1])
    n = len(ops)
    sel = rng.integers(0, g, n)
    for start, _ in readouts:
        sel[start : start + g] = np.arange(g)
    width = 3 + sb + 10 * g
    rows = []
    for c in range(n):
        row = 0
        for value, bits in ((ops[c], 2), (sgns[c], 1), (sel[c], sb), (codes[c], 2 * g)):
            row = (row << bits) | int(value)
        rows.append((row << (8 * g)) | xs[c])
    ports = f"""  wire [31:0] q;
  tpq_dw dut(.clk(clk), .ce(1'b1), .op(v[{width - 1}:{width - 2}]), .sgn(v[{width - 3}]),
    .sel(v[{width - 4}:{10 * g}]), .code(v[{10 * g - 1}:{8 * g}]), .x(v[{8 * g - 1}:0]),
    .q(q));"""
    got = _simulate(tmp_path, verilog, _tb(ports, width, n, "q"), rows, width, libs)
    # q printed after edge c is the sum before it: ops 0 .. c-d-1 applied, states[c-d-1]
    for c in range(d + 1, n):
        want = int(states[c - d - 1][sel[c]]) & 0xFFFFFFFF
        assert got[c] == want, f"cycle {c}, lane {sel[c]}"
    for start, final in readouts:  # every lane's finished sum came through the mux
        assert [got[start + lane] for lane in range(g)] == [int(v) & 0xFFFFFFFF for v in final]


@needs_iverilog
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("g,stage_inputs", [(8, False), (8, True), (64, False), (64, True)])
def test_dw_unit_matches_depthwise_horner_sums(tmp_path, g, stage_inputs, encoding):
    _check_dw(tmp_path, g, *dw_module(g, stage_inputs, encoding))


@needs_iverilog
@pytest.mark.skipif(
    shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)"
)
@pytest.mark.parametrize(
    "family,stage_inputs,encoding", [("xc7", False, "ones"), ("xcup", True, "naive")]
)
def test_synthesized_dw_netlist_matches_depthwise_horner_sums(
    tmp_path, family, stage_inputs, encoding
):
    """The counted depthwise cells still compute the sums (each family as its board builds
    it: inputs staged above 150 MHz, the encoding its calibration keeps)."""
    g = 4
    verilog, latency = dw_module(g, stage_inputs, encoding)
    netlist = tmp_path / "net.v"
    synthesize(verilog, "tpq_dw", family, netlist=netlist)
    _check_dw(tmp_path, g, netlist.read_text(), latency, libs=(cells_sim(),))
