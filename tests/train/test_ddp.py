"""torchrun with two CPU processes (gloo): the same command as a single-process run."""

import json
import subprocess
import sys

from ternpynq.train.checkpoint import load


def test_two_process_ddp_smoke(fashion_dir, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ternpynq.cli",
        "compress",
        "--data",
        str(fashion_dir),
        "--epochs",
        "1,1,1",
        "--batch-size",
        "64",
        "--method",
        "wpc",
        "--target-density",
        "0.8",
        "--out",
        str(run),
    ]
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in recs] == ["pretrain", "compress", "mask", "finetune", "final"]
    final = recs[-1]
    assert final["test_top1"] > 0 and abs(final["density"] - 0.8) < 0.01
    # one JSON result line from rank 0 only
    assert len([x for x in done.stdout.splitlines() if x.startswith("{")]) == 1
    assert load(run / "model.pt")["done"] == ["pretrain", "compress", "finetune"]
