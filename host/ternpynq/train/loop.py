"""Training and evaluation epochs, single process or torchrun DDP (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum numbers over all ranks (identity without DDP)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def cosine_lr(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def progress(iterable, total: int, desc: str, rank: int):
    """tqdm on rank 0 only; a slow refresh when the output is a log file."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        leave=False,
        disable=rank != 0,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
    )


def train_epoch(
    model: nn.Module,
    data,
    opt: torch.optim.Optimizer,
    *,
    base_lr: float,
    epoch: int,
    epochs: int,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
    do_augment: bool = True,
    extra_loss: Callable[[], torch.Tensor] | None = None,
    after_step: Callable[[float], None] | None = None,
    desc: str = "train",
) -> dict:
    """One epoch of SGD with a per-step cosine schedule; returns loss/accuracy/time."""
    model.train()
    steps = -(-len(data) // batch_size)
    start = time.time()
    loss_sum = torch.zeros((), device=next(model.parameters()).device)
    correct = torch.zeros_like(loss_sum)
    seen = 0
    batches = data.batches(batch_size, seed * 100003 + epoch, rank, world, do_augment)
    for i, (x, y) in enumerate(progress(batches, steps, desc, rank)):
        lr = cosine_lr(base_lr, epoch * steps + i, epochs * steps)
        for group in opt.param_groups:
            group["lr"] = lr
        out = model(x)
        loss = F.cross_entropy(out, y)
        total = loss + extra_loss() if extra_loss is not None else loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if after_step is not None:
            after_step(lr)
        loss_sum += loss.detach() * len(y)
        correct += (out.detach().argmax(1) == y).sum()
        seen += len(y)
    loss_total, correct_total, seen_total = all_sum(
        [float(loss_sum), float(correct), float(seen)], loss_sum.device
    )
    return {
        "train_loss": loss_total / max(seen_total, 1),
        "train_acc": 100.0 * correct_total / max(seen_total, 1),
        "epoch_s": time.time() - start,
    }


@torch.no_grad()
def evaluate(model: nn.Module, data, batch_size: int = 1000, rank: int = 0, world: int = 1) -> dict:
    """Top-1/top-5 accuracy (%) and mean loss of the float/fake-quant model."""
    model.eval()
    dev = next(model.parameters()).device
    top1 = torch.zeros((), device=dev)
    top5 = torch.zeros((), device=dev)
    loss = torch.zeros((), device=dev)
    n = 0
    for x, y in data.batches(batch_size, None, rank, world):
        out = model(x)
        loss += F.cross_entropy(out, y, reduction="sum")
        k = min(5, out.shape[1])
        pred = out.topk(k, 1).indices
        top1 += (pred[:, 0] == y).sum()
        top5 += (pred == y[:, None]).any(1).sum()
        n += len(y)
    t1, t5, ls, total = all_sum([float(top1), float(top5), float(loss), float(n)], dev)
    total = max(total, 1)
    return {
        "test_top1": 100.0 * t1 / total,
        "test_top5": 100.0 * t5 / total,
        "test_loss": ls / total,
    }
