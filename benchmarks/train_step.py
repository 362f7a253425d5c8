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


def time_steps(method: str, steps: int, batch: int, device: torch.device) -> float:
    """Median seconds per step after warm-up."""
    torch.manual_seed(0)
    pe = TernaryPEConfig(method=method, lam=0.01)
    model = compress_(resnet20(), pe).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    times = []
    for i in range(steps + 5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if pe.penalized:
            prox_step_(model, pe, 0.02)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 5:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result = {
        m: time_steps(m, args.steps, args.batch, device) for m in ("fp", "tern", "naive", "wpc")
    }
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
    print(
        f"wpc vs fp: {100 * result['wpc_overhead_vs_fp']:+.1f}%   "
        f"wpc vs tern: {100 * result['wpc_overhead_vs_tern']:+.1f}%   ({name})"
    )


if __name__ == "__main__":
    main()
