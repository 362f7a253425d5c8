"""Board files, the generated config header, and the register map against the HLS pragmas."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ternpynq.overlay.boards import BoardError, board_names, config_header, load_board
from ternpynq.overlay.csim_build import kernel_dir
from ternpynq.overlay.paths import overlay_dir
from ternpynq.overlay.regmap import load_regmap, regs_header

TOP = kernel_dir() / "tpq_layer_top.cpp"


def test_both_boards_load_with_the_required_parts():
    assert {"pynq-z2", "zcu104"} <= set(board_names())
    z2, zcu = load_board("pynq-z2"), load_board("zcu104")
    assert (z2.part, z2.ps) == ("xc7z020clg400-1", "zynq7")
    assert (zcu.part, zcu.ps) == ("xczu7ev-ffvc1156-2-e", "zynq_ultra_ps_e")
    header = config_header(z2)
    assert f"#define TPQ_P {z2.P}\n" in header and f"#define TPQ_G {z2.g}\n" in header


def test_bad_board_files_name_the_field(tmp_path):
    good = json.loads((overlay_dir() / "boards" / "pynq-z2.json").read_text())
    for mutate, field in [
        (lambda d: d["pe"].update(g=12), "pe.g"),
        (lambda d: d.pop("part"), "part"),
        (lambda d: d["buffers"].update(weight_bytes=-1), "weight_bytes"),
        (lambda d: d.update(ps="versal"), "ps"),
    ]:
        data = json.loads(json.dumps(good))
        mutate(data)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        with pytest.raises(BoardError, match=field.split(".")[-1]):
            load_board(path)
    with pytest.raises(BoardError, match="unknown board"):
        load_board("no-such-board")


def _pragma_offsets() -> dict[str, int]:
    text = TOP.read_text()
    found = re.findall(
        r"#pragma HLS INTERFACE mode=s_axilite port=(\w+) bundle=control offset=(0x[0-9A-Fa-f]+)",
        text,
    )
    return {port: int(offset, 16) for port, offset in found}


def test_pragma_offsets_equal_the_register_map():
    rm = load_regmap()
    pragmas = _pragma_offsets()
    ports = {reg.port: reg for reg in rm if reg.port and not reg.name.endswith("_ctrl")}
    assert pragmas == {port: reg.offset for port, reg in ports.items()}
    signature = TOP.read_text().split("void tpq_layer(")[1].split(")")[0]
    args = re.findall(r"(\w+)(?:,|$)", signature.replace("\n", " "))
    assert set(args) == set(pragmas)  # every argument is pinned, none is left to the tool


def test_register_map_is_consistent():
    rm = load_regmap()
    assert (rm["CTRL"].offset, rm["GIE"].offset, rm["IER"].offset, rm["ISR"].offset) == (
        0,
        4,
        8,
        12,
    )
    assert (
        rm.ctrl_bits["ap_start"] == 0
        and rm.ctrl_bits["ap_done"] == 1
        and rm.ctrl_bits["ap_idle"] == 2
    )
    user = [reg.offset for reg in rm if reg.port]
    assert min(user) >= 0x20  # newer Vitis HLS reserves 0x00-0x18 for control
    for reg in rm:
        assert f"#define TPQ_REG_{reg.name} 0x{reg.offset:X}u" in regs_header(rm)
        if reg.width == 64:
            assert reg.offset % 16 == 0  # data low, data high, reserved word, per UG1399


def test_pack_puts_values_at_their_words():
    rm = load_regmap()
    words = rm.pack({"wgt_addr": 0x1_2345_6780, "lo": -1, "batch": 3})
    assert (
        words[rm["wgt_addr"].offset // 4] == 0x2345_6780
        and words[rm["wgt_addr"].offset // 4 + 1] == 1
    )
    assert words[rm["lo"].offset // 4] == 0xFFFF_FFFF and words[rm["batch"].offset // 4] == 3
    assert np.count_nonzero(words) == 4


def test_overlapping_registers_are_refused(tmp_path):
    data = json.loads((kernel_dir() / "regmap.json").read_text())
    data["registers"][-1]["offset"] = data["registers"][-2]["offset"]
    path = tmp_path / "regmap.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="overlap"):
        load_regmap(path)


def test_docs_list_every_register():
    doc = (overlay_dir().parent / "docs" / "overlay.md").read_text()
    for reg in load_regmap():
        assert f"| 0x{reg.offset:02X} | `{reg.name}` | {reg.width} |" in doc, reg.name
