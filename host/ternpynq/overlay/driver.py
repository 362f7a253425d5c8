"""The overlay driver: one bundle on one device, one layer per kernel start.

Stages (DESIGN.md "Host runtime"): pack_input -> to_device -> execute (layer by layer) ->
from_device -> unpack_output. Loading a bundle repacks every layer once for the loaded
overlay's g into one weight buffer (``stream.pack_layer``) and checks it against the board's
buffer limits; each batch then costs one input copy, one descriptor write + start per layer and
one output copy. Intermediate feature maps never leave DDR, and buffers are shared between
tensors whose lifetimes do not overlap, so they are reused from batch to batch.

>>> from ternpynq.runtime.synthetic import random_bundle
>>> from ternpynq.runtime.network import Network
>>> from ternpynq.overlay.backends import simulated_device
>>> bundle = random_bundle("tiny", seed=0)
>>> codes = np.zeros((2, 1, 8, 8), np.int8)
>>> with Driver(simulated_device("pynq-z2"), "pynq-z2", bundle) as driver:
...     np.array_equal(driver.run(codes), Network(bundle).run(codes))
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ternpynq.bundle.schema import Bundle, Layer, Op
from ternpynq.overlay import cycles, fmap, hostpack, stream
from ternpynq.overlay.boards import Board, load_board
from ternpynq.overlay.device import DEFAULT_TIMEOUT_S, Buffer, Device, DeviceError
from ternpynq.overlay.stream_dw import dw_words
from ternpynq.runtime.network import check_input

WEIGHT_ALIGN = 64  # each layer's stream starts on a burst boundary of the widest port
MAX_BATCH = 65535  # the kernel's batch register limit (tpq_layer.hpp MAX_BATCH)
# the ops this kernel has a mode for (linear runs as a 1x1 conv); padding is per side
KERNEL_OPS = (Op.CONV, Op.DWCONV, Op.LINEAR, Op.MAXPOOL, Op.GAP)


class OverlayLimitError(ValueError):
    """A bundle layer does not fit the loaded overlay's on-chip buffers."""


@dataclass
class Step:
    """One layer as the driver runs it: packed descriptor, weight offset, tensor slots."""

    layer: Layer
    packed: stream.PackedLayer
    wgt_offset: int
    in_slot: int
    out_slot: int
    res_slot: int | None
    cycles: int  # modelled cycles per image (cycles.layer_cycles at batch 1)


def batched(packed: stream.PackedLayer, n: int) -> stream.PackedLayer:
    """A copy of ``packed`` whose descriptor runs ``n`` images in one start."""
    copy = dataclasses.replace(packed, regs=dict(packed.regs))
    stream.set_batch(copy, n)
    return copy


def check_supported(layer: Layer, board: Board) -> None:
    """Refuse at load an op the loaded overlay's kernel cannot run, naming both."""
    where = f"layer {layer.name!r} cannot run on the {board.name} overlay"
    if layer.op not in KERNEL_OPS:
        names = ", ".join(op.value for op in KERNEL_OPS)
        raise OverlayLimitError(f"{where}: op {layer.op.value!r} is not one of its ops ({names})")
    if layer.op is Op.DWCONV and layer.residual is not None:
        raise OverlayLimitError(f"{where}: its dwconv mode has no fused residual")


def check_fits(packed: stream.PackedLayer, board: Board) -> int:
    """Refuse a layer the overlay cannot hold, naming the limit; returns its modelled cycles."""
    r, name = packed.regs, packed.name
    mode = {v: k for k, v in stream.MODE.items()}[r["mode"]]
    where = f"layer {name!r} does not fit the {board.name} overlay"
    if r["in_type"] == fmap.ELEM_I16 or (r["has_res"] and r["res_type"] == fmap.ELEM_I16):
        raise OverlayLimitError(
            f"{where}: its input or residual holds 16-bit codes; on chip only a layer's "
            "output may be 16-bit (inputs and residuals must fit 8 bits, u8 or i8)"
        )
    # A pixel's output row on chip holds 2 * max_channels bytes; conv tiles hold at most
    # max_channels filters (stream.plan_tiles), gap and dwconv a whole pixel's outputs.
    row = 2 * board.max_channels
    channels = max(r["in_pitch"], r["out_pitch"])
    if mode in ("gap", "dwconv"):
        channels = r["out_pitch"] * fmap.elem_bytes(r["out_type"])
    elif mode == "conv" and packed.tiles:  # the last tile also writes the padding channels
        channels = max(
            channels, (r["out_pitch"] - packed.tiles[-1][0]) * fmap.elem_bytes(r["out_type"])
        )
    if channels > row:
        raise OverlayLimitError(
            f"{where}: {channels} channel bytes per pixel > 2 * max_channels = {row}"
        )
    if mode != "gap" and r["kernel"] > board.max_kernel:
        raise OverlayLimitError(f"{where}: kernel {r['kernel']} > max_kernel = {board.max_kernel}")
    if mode == "dwconv":  # the kernel holds a depthwise layer's whole stream on chip
        need = dw_words(r["in_c"], r["kernel"], r["trits"], board.g) * board.g // 4
        if need > board.weight_bytes:
            raise OverlayLimitError(
                f"{where}: its depthwise stream of {need} bytes > weight_bytes = "
                f"{board.weight_bytes}"
            )
    if r["trits"] > cycles.T_MAX:
        raise OverlayLimitError(f"{where}: {r['trits']} trit planes > {cycles.T_MAX}")
    elems = cycles.ring_rows(r, board, mode) * r["in_w"] * r["in_pitch"]
    if elems > board.input_elems:
        raise OverlayLimitError(
            f"{where}: its input row window holds {elems} elements > input_elems = "
            f"{board.input_elems}"
        )
    return cycles.layer_cycles(packed, board).total


def assign_slots(bundle: Bundle, sizes: dict[str, int]) -> tuple[dict[str, int], list[int]]:
    """Share buffers between tensors whose lifetimes do not overlap.

    ``sizes`` holds each tensor's bytes per image. Returns tensor -> slot and each slot's bytes
    per image. A layer's output never shares a slot with its own input or residual.
    """
    last_use = {bundle.output: len(bundle.layers)}
    for i, layer in enumerate(bundle.layers):
        for name in (layer.input, layer.residual):
            if name is not None:
                last_use[name] = max(last_use.get(name, -1), i)
    slot_of: dict[str, int] = {}
    slot_bytes: list[int] = []
    free: list[int] = []

    def take(tensor: str) -> None:
        slot = free.pop() if free else len(slot_bytes)
        if slot == len(slot_bytes):
            slot_bytes.append(0)
        slot_bytes[slot] = max(slot_bytes[slot], sizes[tensor])
        slot_of[tensor] = slot

    take("input")
    for i, layer in enumerate(bundle.layers):
        take(layer.name)
        for name in (layer.input, layer.residual, layer.name):
            if name is not None and last_use.get(name, -1) <= i and slot_of[name] not in free:
                free.append(slot_of[name])
    return slot_of, slot_bytes


class Driver:
    """Runs ``bundle`` on ``device``, an overlay built for ``board`` (name or Board)."""

    def __init__(
        self,
        device: Device,
        board: str | Board,
        bundle: Bundle,
        *,
        max_batch: int = 32,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be in [1, {MAX_BATCH}], got {max_batch}")
        self.device, self.bundle = device, bundle
        self.board = load_board(board) if isinstance(board, str) else board
        self.timeout_s = timeout_s
        self.types = fmap.fmap_types(bundle)
        self.pixels = fmap.fmap_pixels(bundle, self.board.g)  # elements per pixel in DDR
        # pack_input: the input conv's windows, when the host packs them (hostpack)
        self.packed_first = hostpack.packed_layer(bundle, self.board.g)
        layers = hostpack.overlay_layers(bundle, self.board.g)
        shapes = {"input": (bundle.input.channels, *bundle.input.size)}
        if self.packed_first is not None:
            shapes["input"] = layers[bundle.layers.index(self.packed_first)].in_shape
        shapes.update({layer.name: tuple(layer.out_shape) for layer in bundle.layers})
        self.shapes = shapes
        sizes = {
            name: fmap.fmap_bytes(shape, self.types[name], self.pixels[name])
            for name, shape in shapes.items()
        }
        self.slot_of, self.slot_bytes = assign_slots(bundle, sizes)
        self.steps, chunks, offset = [], [], 0
        for layer in layers:
            check_supported(layer, self.board)
            try:  # filters are split into output-channel tiles that fit the weight buffer
                packed = stream.pack_for_board(layer, self.board, self.types, self.pixels)
            except fmap.StreamError as exc:  # one filter alone is larger than the buffer
                raise OverlayLimitError(
                    f"layer {layer.name!r} does not fit the {self.board.name} overlay: {exc} "
                    f"(weight_bytes = {self.board.weight_bytes})"
                ) from exc
            if layer.residual and self.pixels[layer.residual] != packed.regs["out_pitch"]:
                raise OverlayLimitError(
                    f"layer {layer.name!r} cannot run on the {self.board.name} overlay: its "
                    "residual is laid out unpadded (the network input or its max pool)"
                )
            cost = check_fits(packed, self.board)
            res_slot = self.slot_of[layer.residual] if layer.residual else None
            slots = (self.slot_of[layer.input], self.slot_of[layer.name], res_slot)
            self.steps.append(Step(layer, packed, offset, *slots, cost))
            pad = (-packed.data.size) % WEIGHT_ALIGN
            chunks += [packed.data, np.zeros(pad, np.uint8)]
            offset += packed.data.size + pad
        self.max_batch = self._largest_batch(max_batch)
        # to_device, once per bundle: every layer's stream and params in one buffer
        self.weights = device.allocate(max(offset, WEIGHT_ALIGN))
        self.weights.write(np.concatenate(chunks) if chunks else np.zeros(0, np.uint8))
        self.weights.flush()
        self.capacity = 0
        self.fmaps: list[Buffer] = []
        self._written: dict[str, int] = {}  # register values the device holds now

    def _largest_batch(self, limit: int) -> int:
        """The largest batch up to ``limit`` that every layer's descriptor still fits.

        A linear layer takes its batch as the width of a 1 x n map (``stream.set_batch``), so
        its input row grows with the batch; other layers fit at any batch once they fit at 1.
        """
        low, high = 1, limit
        while low < high:
            mid = (low + high + 1) // 2
            try:
                for step in self.steps:
                    check_fits(batched(step.packed, mid), self.board)
                low = mid
            except OverlayLimitError:
                high = mid - 1
        return low

    @property
    def model_cycles(self) -> int:
        """Modelled overlay cycles for one image (sum over layers)."""
        return sum(step.cycles for step in self.steps)

    def run(self, codes: np.ndarray) -> np.ndarray:
        """(N, C, H, W) int8 input codes -> (N, K) int32 output codes, bit-exact with emu."""
        return self.run_all(codes, keep=False)[self.bundle.output]

    def run_all(self, codes: np.ndarray, keep: bool = True) -> dict[str, np.ndarray]:
        """Every tensor by name (as ``Network.run_all``) when ``keep``; else the output only."""
        codes = check_input(self.bundle, codes)
        parts: list[dict[str, np.ndarray]] = []
        for i in range(0, len(codes), self.max_batch):
            parts.append(self._run_batch(codes[i : i + self.max_batch], keep))
        if not parts:
            k = self.shapes[self.bundle.output]
            return {self.bundle.output: np.zeros((0, *k), np.int32)}
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def _run_batch(self, codes: np.ndarray, keep: bool) -> dict[str, np.ndarray]:
        n = len(codes)
        self._reserve(n)
        # pack_input + to_device: NCHW int8 -> NHWC bytes in the input tensor's buffer
        packed = codes if self.packed_first is None else hostpack.windows(codes, self.packed_first)
        data = fmap.pack_fmap(packed, self.types["input"], self.pixels["input"])
        source = self.fmaps[self.slot_of["input"]]
        source.write(data)
        source.flush()
        out = {"input": codes.astype(np.int32)} if keep else {}
        for step in self.steps:
            self._execute(step, n)
            if keep or step.layer.name == self.bundle.output:
                out[step.layer.name] = self._from_device(step.layer.name, n)
        return out

    def _execute(self, step: Step, n: int) -> None:
        """Write one layer's descriptor, start the kernel, wait, check its status."""
        regs = batched(step.packed, n).regs
        regs["wgt_addr"] = self.weights.device_address + step.wgt_offset
        regs["in_addr"] = self.fmaps[step.in_slot].device_address
        regs["out_addr"] = self.fmaps[step.out_slot].device_address
        regs["res_addr"] = 0 if step.res_slot is None else self.fmaps[step.res_slot].device_address
        for name, value in regs.items():
            # AXI-Lite registers keep their value, so only what changed since the last
            # layer is written: on a board each write is an uncached MMIO store.
            if self._written.get(name) != value:
                self.device.write(name, value)
                self._written[name] = value
        self.device.start()
        try:
            self.device.wait_done(self.timeout_s)
        except DeviceError as exc:
            self._written.clear()  # a reset (bitstream reload) clears the registers
            raise type(exc)(f"layer {step.layer.name!r}: {exc}") from exc
        status = self.device.read("status")
        if status:
            names = {v: k for k, v in self.device.regmap.enums["status"].items()}
            raise DeviceError(
                f"layer {step.layer.name!r}: the overlay reported "
                f"{names.get(status, 'unknown status')} ({status})"
            )

    def _from_device(self, tensor: str, n: int) -> np.ndarray:
        """from_device + unpack_output: NHWC bytes -> (N, C, H, W) or (N, K) int32 codes."""
        buffer = self.fmaps[self.slot_of[tensor]]
        buffer.invalidate()
        kind, pixel = self.types[tensor], self.pixels[tensor]
        nbytes = n * fmap.fmap_bytes(self.shapes[tensor], kind, pixel)
        return fmap.unpack_fmap(buffer.array[:nbytes], (n, *self.shapes[tensor]), kind, pixel)

    def _reserve(self, n: int) -> None:
        """Feature-map buffers for ``n`` images; grown only when a larger batch arrives."""
        if n <= self.capacity:
            return
        for buffer in self.fmaps:
            buffer.free()
        self.fmaps = [self.device.allocate(size * n) for size in self.slot_bytes]
        self.capacity = n

    def close(self) -> None:
        """Free every buffer and the device."""
        for buffer in [*self.fmaps, self.weights]:
            buffer.free()
        self.fmaps, self.capacity = [], 0
        self.device.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
