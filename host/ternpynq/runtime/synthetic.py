"""Random but well-formed bundles for tests, benchmarks and the docs' examples.

Weights are random ternary codes (multi-trit for the first conv and the FC) with a chosen
fraction of PE groups pruned; requantization is calibrated on random input codes so that
activations spread over their code range instead of saturating. The classes mean nothing:
these bundles exercise the machinery and are never presented as classifiers.

Build one from the shell: ``python -m ternpynq.runtime.synthetic --arch resnet20 --out test.tpq``.
"""

from __future__ import annotations

import argparse

import numpy as np

from ternpynq.bundle.numerics import quantize_multiplier
from ternpynq.bundle.packing import trit_limit
from ternpynq.bundle.schema import Bundle, InputSpec, Layer, Op, Padding, Requant, same_padding
from ternpynq.bundle.stats import group_mask
from ternpynq.bundle.validate import output_shape
from ternpynq.runtime import ops

RELU, INT8, INT16 = (0, 255), (-128, 127), (-32768, 32767)
TARGET = {RELU: 160.0, INT8: 90.0, INT16: 20000.0}  # the 99th percentile aimed for


def _layer(name: str, op: Op, src: str, **fields) -> Layer:
    """A layer whose shapes and output scale ``GraphBuilder._add`` fills in."""
    return Layer(name=name, op=op, input=src, in_shape=(), out_shape=(), out_scale=1.0, **fields)


class GraphBuilder:
    """Append layers one by one; each is calibrated on a batch of random input codes."""

    def __init__(
        self, channels: int, size: int, g: int, prune: float, seed: int, batch: int = 4
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.g, self.prune = g, prune
        self.size, self.channels = size, channels
        self.layers: list[Layer] = []
        self.shapes = {"input": (channels, size, size)}
        self.values = {"input": self.rng.integers(-128, 128, (batch, channels, size, size))}

    def _weights(self, shape: tuple[int, ...], trits: int) -> tuple[np.ndarray, np.ndarray]:
        if trits == 1:
            w = self.rng.choice(np.array([-1, 0, 1], np.int16), size=shape, p=[0.3, 0.4, 0.3])
        else:
            limit = trit_limit(trits)
            w = self.rng.integers(-limit, limit + 1, size=shape).astype(np.int16)
        mask = self.rng.random((shape[0], -(-shape[1] // self.g))) >= self.prune
        if trits == 1:
            keep = np.repeat(mask, self.g, axis=1)[:, : shape[1]]
            w = w * keep.reshape(keep.shape + (1,) * (w.ndim - 2))
        return w.astype(np.int16), group_mask(w, self.g) | (mask if trits == 1 else True)

    def _add(self, layer: Layer, clamp: tuple[int, int] | None, res_weight: float = 0.5) -> str:
        layer.in_shape = self.shapes[layer.input]
        layer.out_shape = output_shape(layer)
        x = self.values[layer.input]
        if clamp is not None:
            acc = ops.accumulate(layer, x).astype(np.float64)
            peak = max(float(np.percentile(np.abs(acc), 99)), 1.0)
            ratios = [TARGET[clamp] / peak] * layer.out_shape[0]
            if layer.residual:
                res_peak = max(float(np.percentile(np.abs(self.values[layer.residual]), 99)), 1.0)
                ratios = [r * (1 - res_weight) for r in ratios] + [
                    TARGET[clamp] * res_weight / res_peak
                ]
            mult, shift = quantize_multiplier(np.array(ratios))
            bias = np.zeros(layer.out_shape[0], np.int32)
            if layer.op is not Op.GAP:
                bias = self.rng.integers(-int(peak) // 8, int(peak) // 8 + 1, layer.out_shape[0])
            layer.requant = Requant(
                mult=mult[: layer.out_shape[0]],
                bias=bias.astype(np.int32),
                shift=shift,
                lo=clamp[0],
                hi=clamp[1],
                res_mult=int(mult[-1]) if layer.residual else 0,
            )
        layer.out_scale = 1.0 / 64
        residual = self.values[layer.residual] if layer.residual else None
        self.values[layer.name] = ops.run_layer(layer, x, residual)
        self.shapes[layer.name] = tuple(layer.out_shape)
        self.layers.append(layer)
        return layer.name

    def conv(
        self,
        name: str,
        src: str,
        cout: int,
        k: int = 3,
        stride: int = 1,
        trits: int = 1,
        clamp: tuple[int, int] = RELU,
        residual: str | None = None,
        padding: Padding | None = None,
    ) -> str:
        w, mask = self._weights((cout, self.shapes[src][0], k, k), trits)
        layer = _layer(
            name,
            Op.CONV,
            src,
            kernel=k,
            stride=stride,
            padding=k // 2 if padding is None else padding,
            trits=trits,
            weight=w,
            mask=mask,
            residual=residual,
            alpha=1.0,
        )
        return self._add(layer, clamp)

    def dwconv(self, name: str, src: str, k: int = 3, stride: int = 1, trits: int = 5) -> str:
        """Depthwise k×k with TF "SAME" padding (asymmetric at stride 2)."""
        c, h, w = self.shapes[src]
        top, bottom = same_padding(h, k, stride)
        left, right = same_padding(w, k, stride)
        weight, mask = self._weights((c, 1, k, k), trits)
        layer = _layer(name, Op.DWCONV, src, kernel=k, stride=stride, trits=trits, weight=weight,
                       mask=mask, padding=(top, left, bottom, right), alpha=1.0)  # fmt: skip
        return self._add(layer, RELU)

    def mbconv(self, name: str, src: str, cout: int, expand: int, k: int, stride: int) -> str:
        """Inverted residual: expand 1×1, depthwise, linear int8 projection (+ fused skip)."""
        cin = self.shapes[src][0]
        x = self.conv(f"{name}.expand", src, cin * expand, k=1, trits=5)
        x = self.dwconv(f"{name}.dw", x, k, stride)
        skip = src if stride == 1 and cin == cout else None
        return self.conv(f"{name}.project", x, cout, k=1, trits=5, clamp=INT8, residual=skip)

    def linear(self, name: str, src: str, cout: int, trits: int = 5) -> str:
        w, mask = self._weights((cout, self.shapes[src][0]), trits)
        layer = _layer(name, Op.LINEAR, src, trits=trits, weight=w, mask=mask, alpha=1.0)
        return self._add(layer, INT16)

    def maxpool(self, name: str, src: str, k: int = 3, stride: int = 2) -> str:
        layer = _layer(name, Op.MAXPOOL, src, kernel=k, stride=stride, padding=k // 2)
        return self._add(layer, None)

    def gap(self, name: str, src: str) -> str:
        return self._add(_layer(name, Op.GAP, src), RELU)

    def basic_block(self, name: str, src: str, cout: int, stride: int) -> str:
        """ResNet basic block; the shortcut is fused into the second conv's requantization."""
        shortcut = src
        if stride != 1 or self.shapes[src][0] != cout:
            shortcut = self.conv(f"{name}.downsample", src, cout, k=1, stride=stride, clamp=INT8)
        mid = self.conv(f"{name}.conv1", src, cout, stride=stride)
        return self.conv(f"{name}.conv2", mid, cout, residual=shortcut)

    def bundle(self, model: str, num_classes: int) -> Bundle:
        spec = InputSpec(
            size=(self.size, self.size),
            channels=self.channels,
            mean=(0.5,) * self.channels,
            std=(0.25,) * self.channels,
            resize=self.size,
            scale=1.0 / 32,
        )
        return Bundle(
            model=model,
            labels=[f"class {i}" for i in range(num_classes)],
            input=spec,
            g=self.g,
            layers=self.layers,
            output=self.layers[-1].name,
            extra={"synthetic": True},
        )


def random_bundle(
    arch: str = "tiny",
    g: int = 16,
    prune: float = 0.25,
    seed: int = 0,
    size: int | None = None,
    num_classes: int = 10,
) -> Bundle:
    """A random valid bundle: ``tiny`` (1×8×8), ``resnet20`` (1×28×28), ``resnet18`` (3×224×224),
    ``mbconv`` (3×12×12, depthwise and wide layers of format 2)."""
    if arch == "tiny":
        b = GraphBuilder(1, size or 8, g, prune, seed)
        x = b.conv("conv1", "input", 8, trits=5)
        x = b.basic_block("block1", x, 16, stride=2)
        x = b.maxpool("pool", x, k=2, stride=2)
        x = b.linear("fc", b.gap("gap", x), num_classes)
    elif arch == "resnet20":
        b = GraphBuilder(1, size or 28, g, prune, seed)
        x = b.conv("conv1", "input", 16, trits=5)
        for stage, width in enumerate((16, 32, 64), start=1):
            for block in range(3):
                stride = 2 if stage > 1 and block == 0 else 1
                x = b.basic_block(f"layer{stage}.{block}", x, width, stride)
        x = b.linear("fc", b.gap("avgpool", x), num_classes)
    elif arch == "resnet18":
        b = GraphBuilder(3, size or 224, g, prune, seed, batch=1)
        x = b.conv("conv1", "input", 64, k=7, stride=2, trits=5)
        x = b.maxpool("maxpool", x)
        for stage, width in enumerate((64, 128, 256, 512), start=1):
            for block in range(2):
                stride = 2 if stage > 1 and block == 0 else 1
                x = b.basic_block(f"layer{stage}.{block}", x, width, stride)
        x = b.linear("fc", b.gap("avgpool", x), num_classes)
    elif arch == "mbconv":  # format-2 ops: depthwise, SAME padding, a wide 1152-input projection
        b = GraphBuilder(3, size or 12, g, prune, seed)
        x = b.conv("stem", "input", 8, stride=2, trits=5, padding=(0, 0, 1, 1))
        x = b.mbconv("block1", x, 8, expand=1, k=3, stride=1)
        x = b.mbconv("block2", x, 16, expand=6, k=5, stride=2)
        x = b.mbconv("block3", x, 16, expand=72, k=3, stride=1)
        x = b.linear("fc", b.gap("gap", b.conv("head", x, 32, k=1, trits=5)), num_classes)
    else:
        raise ValueError(f"unknown arch {arch!r}; choose tiny, resnet20, resnet18 or mbconv")
    return b.bundle(f"random-{arch}", num_classes)


def main(argv: list[str] | None = None) -> int:
    from ternpynq.bundle.io import save

    parser = argparse.ArgumentParser(description="Write a random (meaningless) test bundle.")
    parser.add_argument(
        "--arch", default="resnet20", choices=["tiny", "resnet20", "resnet18", "mbconv"]
    )
    parser.add_argument("--g", type=int, default=16)
    parser.add_argument("--prune", type=float, default=0.25, help="fraction of groups pruned")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    path = save(random_bundle(args.arch, args.g, args.prune, args.seed), args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
