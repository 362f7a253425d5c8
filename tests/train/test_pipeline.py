"""End to end through the CLI: all stages on tiny data, SIGKILL + resume, clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ternpynq.cli import main
from ternpynq.train.checkpoint import load

CLI = [sys.executable, "-m", "ternpynq.cli"]


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_sigkilled_run_resumes_from_its_last_checkpoint(fashion_dir, tmp_path):
    run = tmp_path / "run"
    cmd = [
        *CLI,
        "compress",
        "--data",
        str(fashion_dir),
        "--epochs",
        "3,1,1",
        "--batch-size",
        "64",
        "--method",
        "naive",
        "--lam",
        "0.05",
        "--out",
        str(run),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists():
        assert time.time() < deadline and proc.poll() is None, "no checkpoint was written"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = load(run / "checkpoint.pt")
    assert saved["stage"] == "pretrain" and saved["epoch"] >= 1
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    recs = records(run)
    epochs = [r["epoch"] for r in recs if r["stage"] == "pretrain"]
    assert sorted(set(epochs)) == [1, 2, 3]
    assert epochs.count(saved["epoch"]) == 1  # the saved epoch is not trained again
    assert recs[-1]["stage"] == "final"
    assert [r["stage"] for r in recs].count("mask") == 1
    for name in ("pretrain.pt", "compress.pt", "finetune.pt", "model.pt"):
        assert (run / name).is_file()
    assert not list(run.glob(".*tmp*"))  # no torn temporary checkpoint left behind


def test_quick_profile_flags_and_one_stage_at_a_time(fashion_dir, tmp_path):
    run = tmp_path / "r"
    base = [
        "compress",
        "--data",
        str(fashion_dir),
        "--epochs",
        "1,1,1",
        "--batch-size",
        "128",
        "--method",
        "tern",
        "--out",
        str(run),
    ]
    assert main([*base, "--stage", "pretrain"]) == 0
    assert load(run / "model.pt")["done"] == ["pretrain"]
    assert main([*base, "--stage", "compress,finetune"]) == 0
    payload = load(run / "model.pt")
    assert payload["done"] == ["pretrain", "compress", "finetune"]
    assert isinstance(payload["model"]["layer1.0.conv1.mask"], torch.Tensor)


def test_missing_dataset_is_one_clear_line(tmp_path, capsys):
    code = main(["compress", "--data", str(tmp_path), "--quick", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1
    assert "dataset-fashion-mnist" in err and "--data" in err


def test_bad_stage_and_bad_checkpoint_are_clear_errors(tmp_path, capsys):
    assert main(["compress", "--stage", "warmup", "--out", str(tmp_path)]) == 1
    assert "--stage" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "--out", str(tmp_path / "m.tpq")]) == 1
    err = capsys.readouterr().err
    assert "not a ternpynq checkpoint" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_quick_profile_on_real_fashion_mnist(tmp_path):
    """The --quick profile on the real dataset (issue 3: <= 10 minutes on 2 CPU cores)."""
    start = time.time()
    assert main(["compress", "--quick", "--out", str(tmp_path / "q")]) == 0
    assert time.time() - start < 600
    assert records(tmp_path / "q")[-1]["test_top1"] > 70


def test_default_rank_tau_prunes_by_the_penalty_alone(fashion_dir, tmp_path):
    """No target_density: the groups the default WPC (rank tau) zeroes are the whole mask."""
    from ternpynq.train.compress import ternary_layers
    from ternpynq.train.config import StageConfig, TernaryPEConfig, TrainConfig
    from ternpynq.train.groups import group_view
    from ternpynq.train.pipeline import Run

    cfg = TrainConfig(data=str(fashion_dir), batch_size=64, train_subset=256)
    cfg.pretrain, cfg.compress, cfg.finetune = (
        StageConfig(1, 0.1),
        StageConfig(2, 0.02),
        StageConfig(1, 0.01),
    )
    pe = TernaryPEConfig(lam=20.0)  # default method, tau mode and r; strong enough for 8 steps
    assert pe.target_density is None and pe.tau_mode.value == "rank"
    run = Run(cfg, pe, tmp_path / "run")
    result = run.run()
    assert 0.5 < result["density"] < 1.0  # pruned, but only the weak quantile
    for _, m in ternary_layers(run.model):
        pruned = ~m.mask  # (Cout, G)
        assert torch.count_nonzero(group_view(m.weight, pe.g)[pruned]) == 0
        assert torch.count_nonzero(group_view(m.effective_weight(), pe.g)[pruned]) == 0
        kept = group_view(m.weight, pe.g)[m.mask]
        assert (kept.abs().amax(-1) >= pe.mask_eps).all()  # a kept group is not empty
