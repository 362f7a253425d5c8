"""The compression pipeline: float pre-training -> penalty stage -> fixed mask -> masked
ternary fine-tuning, resumable from an atomic checkpoint after every epoch.

A run directory holds ``config.json``, ``metrics.jsonl`` (one JSON object per epoch),
``checkpoint.pt`` (the latest state, for resuming), one ``<stage>.pt`` per finished stage and
``model.pt`` (the last finished stage, the input of ``export``).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from ternpynq.train import checkpoint as ckpt
from ternpynq.train.compress import (
    compress_,
    fix_mask_,
    penalty_loss,
    prox_step_,
    set_ternary,
    stats,
)
from ternpynq.train.config import (
    Solver,
    TernaryPEConfig,
    TrainConfig,
    pe_config_from_dict,
    to_dict,
    train_config_from_dict,
)
from ternpynq.train.data import FASHION_LABELS, fashion_mnist, fashion_spec, imagenet_spec
from ternpynq.train.loop import evaluate, setup_distributed, train_epoch
from ternpynq.train.models import build, load_init

STAGES = ("pretrain", "compress", "finetune")


def load_datasets(cfg: TrainConfig, device: torch.device):
    """(train, test, labels, spec) for the configured dataset."""
    if cfg.dataset == "fashion-mnist":
        train = fashion_mnist(cfg.data, "train", device, cfg.train_subset)
        test = fashion_mnist(cfg.data, "test", device, cfg.test_subset)
        return train, test, list(FASHION_LABELS), fashion_spec()
    if cfg.dataset == "imagefolder":
        from ternpynq.train.imagefolder import ImageFolderData, readable_labels

        if not cfg.data:
            raise ValueError("--dataset imagefolder needs --data DIR (with DIR/train and DIR/val)")
        spec = imagenet_spec(cfg.image_size)
        train = ImageFolderData(cfg.data, "train", spec, device)
        test = ImageFolderData(cfg.data, "val", spec, device)
        return train, test, readable_labels(train.classes), spec
    raise ValueError(f"unknown dataset {cfg.dataset!r}; choose fashion-mnist or imagefolder")


def make_model(cfg: TrainConfig, pe: TernaryPEConfig, channels: int) -> nn.Module:
    model = build(cfg.arch, cfg.num_classes, channels)
    if cfg.init:
        load_init(model, cfg.init)
    return compress_(model, pe)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class Run:
    """One pipeline run in ``out_dir``; ``run()`` resumes where a killed run stopped."""

    def __init__(
        self,
        cfg: TrainConfig,
        pe: TernaryPEConfig,
        out_dir: str | Path,
        start_from: str | None = None,
    ):
        self.cfg, self.pe, self.out = cfg, pe, Path(out_dir)
        self.start_from = start_from
        self.rank, self.world, self.device = setup_distributed()
        torch.manual_seed(cfg.seed)
        self.train, self.test, self.labels, self.spec = load_datasets(cfg, self.device)
        if cfg.dataset == "imagefolder":
            self.cfg.num_classes = len(self.labels)
        self.model = make_model(self.cfg, pe, self.spec.channels).to(self.device)
        self.out.mkdir(parents=True, exist_ok=True)

    # -- bookkeeping -------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def payload(self, stage: str, epoch: int, done: list[str], opt=None) -> dict:
        return {
            "format": ckpt.FORMAT,
            "stage": stage,
            "epoch": epoch,
            "done": done,
            "model": self.model.state_dict(),
            "opt": opt.state_dict() if opt is not None else None,
            "train_config": json.dumps(to_dict(self.cfg)),
            "pe_config": json.dumps(to_dict(self.pe)),
            "labels": json.dumps(self.labels),
            "spec": json.dumps(dataclasses.asdict(self.spec)),
        }

    def save(self, name: str, payload: dict) -> None:
        if self.rank == 0:
            ckpt.save_atomic(payload, self.out / name)

    # -- stages ------------------------------------------------------------------------------
    def configure(self, stage: str) -> None:
        """Ternary on/off for ``stage`` (pre-training is always float)."""
        set_ternary(self.model, self.pe.ternary and stage != "pretrain")

    def stage_deadline(self, stage: str, first: int, later: tuple[str, ...]) -> float | None:
        """Share the time left before ``cfg.deadline`` among stages by their epochs left, so a
        run that is short of time still fine-tunes (shortened stages are logged)."""
        if not self.cfg.deadline:
            return None
        here = getattr(self.cfg, stage).epochs - first
        total = here + sum(getattr(self.cfg, s).epochs for s in later)
        left = self.cfg.deadline - time.time()
        return time.time() + left * here / max(total, 1)

    def run_stage(
        self, stage: str, done: list[str], resume: dict | None, later: tuple[str, ...] = ()
    ) -> None:
        sc = getattr(self.cfg, stage)
        self.configure(stage)
        net = self.model
        if self.world > 1:
            net = DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
        opt = torch.optim.SGD(
            self.model.parameters(),
            lr=sc.lr,
            momentum=self.cfg.momentum,
            weight_decay=self.cfg.weight_decay,
            nesterov=True,
        )
        first = 0
        if resume is not None:
            first = resume["epoch"]
            if resume.get("opt"):
                opt.load_state_dict(resume["opt"])
        penalize = stage == "compress" and self.pe.penalized
        extra = after = None
        if penalize and self.pe.solver is Solver.SUBGRADIENT:

            def extra():  # noqa: E306
                return penalty_loss(self.model, self.pe)
        elif penalize:

            def after(lr: float) -> None:  # noqa: E306
                prox_step_(self.model, self.pe, lr)

        stop = self.stage_deadline(stage, first, later)
        for epoch in range(first, sc.epochs):
            if stop is not None and time.time() > stop:
                self.log({"stage": stage, "epoch": epoch, "truncated": True})
                break
            rec = train_epoch(
                net,
                self.train,
                opt,
                base_lr=sc.lr,
                epoch=epoch,
                epochs=sc.epochs,
                batch_size=self.cfg.batch_size,
                seed=self.cfg.seed + 1000 * STAGES.index(stage),
                rank=self.rank,
                world=self.world,
                do_augment=self.cfg.augment,
                extra_loss=extra,
                after_step=after,
                desc=f"{stage} {epoch + 1}/{sc.epochs}",
            )
            if self.cfg.eval_every_epoch:
                rec.update(evaluate(self.model, self.test, rank=self.rank, world=self.world))
            s = stats(self.model, self.pe)
            rec.update({k: s[k] for k in ("density", "s_min", "cr")})
            self.log({"stage": stage, "epoch": epoch + 1, **rec})
            self.save("checkpoint.pt", self.payload(stage, epoch + 1, done, opt))
        if stage == "compress":
            s = fix_mask_(self.model, self.pe)
            self.log({"stage": "mask", **{k: s[k] for k in ("density", "s_min", "cr")}})

    def run(self, stages: tuple[str, ...] = STAGES) -> dict:
        """Run ``stages`` in order, resuming from ``checkpoint.pt`` when one exists."""
        resume = None
        done: list[str] = []
        state = self.out / "checkpoint.pt"
        if state.is_file():
            resume = ckpt.load(state, self.device)
            self.model.load_state_dict(resume["model"])
            done = list(resume["done"])
        elif self.start_from:
            start = ckpt.load(self.start_from, self.device)
            self.model.load_state_dict(start["model"])
            done = list(start["done"])
        if self.rank == 0:
            (self.out / "config.json").write_text(
                json.dumps(
                    {
                        "train": to_dict(self.cfg),
                        "pe": to_dict(self.pe),
                        "device": device_name(self.device),
                    },
                    indent=2,
                )
            )
        start_time = time.time()
        todo = [s for s in stages if s not in done]
        for i, stage in enumerate(todo):
            here = resume if resume is not None and resume["stage"] == stage else None
            self.run_stage(stage, done, here, tuple(todo[i + 1 :]))
            resume = None
            done.append(stage)
            final = self.payload(stage, getattr(self.cfg, stage).epochs, done)
            final["opt"] = None
            self.save(f"{stage}.pt", final)
            self.save("model.pt", final)
            self.save("checkpoint.pt", final)
        result = {**evaluate(self.model, self.test, rank=self.rank, world=self.world)}
        s = stats(self.model, self.pe)
        result.update({k: s[k] for k in ("density", "s_min", "cr")})
        result["wall_s"] = time.time() - start_time
        result["device"] = device_name(self.device)
        self.log({"stage": "final", **result})
        if self.world > 1:
            dist.barrier()
        return result


def model_from_checkpoint(
    payload: dict, device: str | torch.device = "cpu"
) -> tuple[nn.Module, TrainConfig, TernaryPEConfig]:
    """Rebuild the trained model (with its masks and ternary state) from a checkpoint."""
    cfg = train_config_from_dict(json.loads(payload["train_config"]))
    pe = pe_config_from_dict(json.loads(payload["pe_config"]))
    cfg.init = None
    spec = json.loads(payload["spec"])
    model = make_model(cfg, pe, spec["channels"]).to(device)
    model.load_state_dict(payload["model"])
    set_ternary(model, pe.ternary and payload["stage"] != "pretrain")
    model.eval()
    return model, cfg, pe
