"""Golden-model test vectors for the overlay's C++ testbench (tpq_layer_tb.cpp).

Every layer of a bundle becomes one case: its register values, the bytes of each m_axi port,
the golden model's output bytes and the cycle model's count. The HLS flow's ``csim`` step
(overlay/Makefile) and the pytest suite both run the testbench on these files.

``python -m ternpynq.overlay.csim_vectors --board pynq-z2 --out vectors.bin``
"""

from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ternpynq.bundle.schema import Bundle, Layer
from ternpynq.overlay.boards import Board, load_board
from ternpynq.overlay.cycles import layer_cycles
from ternpynq.overlay.fmap import out_pixel, pack_fmap, pitch, unpack_fmap
from ternpynq.overlay.regmap import load_regmap
from ternpynq.overlay.stream import pack_for_board, set_batch
from ternpynq.runtime import ops

MAGIC, VERSION = b"TPQV", 1


@dataclass
class Case:
    """One layer start: register values, the bytes of each port, and the golden output."""

    name: str
    regs: dict[str, int]
    wgt: np.ndarray  # weight stream + params (gmem_w)
    fin: np.ndarray  # input feature maps (gmem_i)
    res: np.ndarray  # residual feature maps (gmem_r), empty if none
    expected: np.ndarray  # golden output codes, (N, C, H, W) or (N, C)
    expected_bytes: np.ndarray  # the same, as the kernel must write them (gmem_o)
    cycles: int  # the cycle model's prediction
    status: int = 0
    # the cycle model by loop label: (iterations, entries)
    loops: dict[str, tuple[int, int]] = field(default_factory=dict)

    def with_(self, **changes) -> Case:
        return replace(self, **changes)

    def decode(self, data: np.ndarray) -> np.ndarray:
        """Output bytes -> codes shaped like ``expected``."""
        return unpack_fmap(data, self.expected.shape, self.regs["out_type"], self.regs["out_pitch"])


def make_case(
    layer: Layer,
    x: np.ndarray,
    residual: np.ndarray | None,
    types: dict[str, int],
    board: Board,
    pixels: dict[str, int] | None = None,
) -> Case:
    """Pack ``layer`` for ``board`` with input codes ``x`` (N, ...) and its golden output;
    ``pixels`` are the elements per pixel of its tensors (default: a network input as it
    comes, any other input padded, the output as ``out_pixel`` lays it out)."""
    res_type = types[layer.residual] if layer.residual else 0
    if pixels is None:
        cin = layer.in_shape[0]
        pixels = {layer.input: cin if layer.input == "input" else pitch(cin, board.g)}
        pixels[layer.name] = out_pixel(layer, pixels[layer.input], board.g)
    packed = pack_for_board(layer, board, types, pixels)
    n = x.shape[0]
    set_batch(packed, n)
    expected = ops.run_layer(layer, x, residual)
    in_px, out_px = packed.regs["in_pitch"], packed.regs["out_pitch"]
    fin = pack_fmap(x, types[layer.input], in_px)  # NHWC bytes, whatever the layer's view of them
    res = pack_fmap(residual, res_type, out_px) if layer.residual else np.zeros(0, np.uint8)
    out = pack_fmap(expected, packed.regs["out_type"], out_px)
    model = layer_cycles(packed, board)
    data = (packed.regs, packed.data, fin, res, expected, out)
    return Case(layer.name, *data, model.total, loops=model.loops)


def network_cases(bundle: Bundle, x: np.ndarray, board: Board) -> list[Case]:
    """One case per layer, each fed the golden model's own input tensor."""
    from ternpynq.overlay.fmap import fmap_pixels, fmap_types
    from ternpynq.overlay.hostpack import overlay_layers, packed_layer, windows
    from ternpynq.runtime.network import Network

    tensors = Network(bundle).run_all(x)
    types, pixels = fmap_types(bundle), fmap_pixels(bundle, board.g)
    first = packed_layer(bundle, board.g)
    if first is not None:  # the host writes that conv's windows as its input
        tensors = {**tensors, "input": windows(tensors["input"], first)}
    cases = []
    for layer in overlay_layers(bundle, board.g):
        res = tensors[layer.residual] if layer.residual else None
        cases.append(make_case(layer, tensors[layer.input], res, types, board, pixels))
    return cases


def write_vectors(cases: list[Case], path: Path) -> None:
    """The testbench's input file; the format is described in tpq_layer_tb.cpp."""
    rm = load_regmap()
    with open(path, "wb") as f:
        f.write(struct.pack("<4sII", MAGIC, VERSION, len(cases)))
        for case in cases:
            regs = rm.pack(case.regs)
            f.write(struct.pack("<I", regs.size) + regs.astype("<u4").tobytes())
            for part in (case.wgt, case.fin, case.res, case.expected_bytes):
                f.write(struct.pack("<Q", part.size) + part.tobytes())
            f.write(struct.pack("<QI", case.cycles, case.status))


def main(argv: list[str] | None = None) -> int:
    from ternpynq.runtime.synthetic import random_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", default="resnet20", choices=["tiny", "resnet20"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    board = load_board(args.board)
    bundle = random_bundle(
        args.arch, g=16, seed=args.seed, size=12 if args.arch == "resnet20" else None
    )
    rng = np.random.default_rng(args.seed)
    x = rng.integers(-128, 128, (2, bundle.input.channels, *bundle.input.size)).astype(np.int8)
    cases = network_cases(bundle, x, board)
    write_vectors(cases, args.out)
    print(f"{args.out}: {len(cases)} layer cases for {board.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
