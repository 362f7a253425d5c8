"""Time one training step of ResNet-20 on Fashion-MNIST-sized input: plain float SGD against
WPC (ternarizer + proximal clipped group lasso) and naive, side by side.

    python benchmarks/train_step.py [--steps 30] [--batch 256] [--json]

Goal (issue 3): WPC adds at most 15% to a plain step. Uses random data: the cost of a step
does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from ternpynq.train.compress import compress_, prox_step_
from ternpynq.train.config import TernaryPEConfig
from ternpynq.train.models import resnet20


class Trainer:
    """One model and optimizer for one method, on fixed random data."""

    def __init__(self, method: str, batch: int, device: torch.device) -> None:
        torch.manual_seed(0)
        self.pe = TernaryPEConfig(method=method, lam=0.01)
        self.model = compress_(resnet20(), self.pe).to(device)
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4
        )
        self.x = torch.randn(batch, 1, 28, 28, device=device)
        self.y = torch.randint(0, 10, (batch,), device=device)
        self.device = device

    def step(self) -> float:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        loss = F.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.pe.penalized:
            prox_step_(self.model, self.pe, 0.02)
        sync()
        return time.perf_counter() - t0


def time_steps(methods: tuple[str, ...], steps: int, batch: int, device: torch.device) -> dict:
    """Median seconds per step; the methods take turns step by step, so a machine shared with
    other work slows them all alike."""
    trainers = {m: Trainer(m, batch, device) for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for i in range(steps + 3):
        for m, trainer in trainers.items():
            t = trainer.step()
            if i >= 3:
                times[m].append(t)
    return {m: sorted(v)[len(v) // 2] for m, v in times.items()}


def time_prox(device: torch.device, repeats: int = 50) -> float:
    """Seconds for the WPC proximal step alone over all layers (no forward or backward): the
    part of the overhead that does not depend on other jobs sharing the machine."""
    pe = TernaryPEConfig(method="wpc", lam=0.01)
    model = compress_(resnet20(), pe).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        prox_step_(model, pe, 0.02)
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        prox_step_(model, pe, 0.02)
    sync()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result: dict = time_steps(("fp", "tern", "naive", "wpc"), args.steps, args.batch, device)
    result["wpc_prox_alone"] = time_prox(device)
    result["wpc_overhead_vs_fp"] = result["wpc"] / result["fp"] - 1
    result["wpc_overhead_vs_tern"] = result["wpc"] / result["tern"] - 1
    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    )
    result["device"] = name
    if args.json:
        print(json.dumps(result))
        return
    for m in ("fp", "tern", "naive", "wpc"):
        print(f"{m:6s} {1000 * result[m]:8.2f} ms/step")
    print(f"wpc proximal step alone: {1000 * result['wpc_prox_alone']:.2f} ms")
    print(
        f"wpc vs fp: {100 * result['wpc_overhead_vs_fp']:+.1f}%   "
        f"wpc vs tern: {100 * result['wpc_overhead_vs_tern']:+.1f}%   ({name})"
    )


if __name__ == "__main__":
    main()
