"""The ablation driver: shared pre-training, runs in parallel processes, one summary."""

import json

from ternpynq.train.ablation import main, plan


def test_plan_names_every_method():
    names = [name for name, _ in plan((0.1,))]
    assert names == ["fp", "tern", "naive-0.1", "wpc-0.1", "naive-d0.7", "wpc-d0.7"]


def test_ablation_runs_share_one_pretraining(fashion_dir, tmp_path):
    out = tmp_path / "abl"
    code = main(["--out", str(out), "--data", str(fashion_dir), "--epochs", "1,1,1",
                 "--lams", "0.05", "--only", "fp,wpc-0.05"])  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"fp", "wpc-0.05", "_wall_s"}
    for name in ("fp", "wpc-0.05"):
        assert summary[name]["stage"] == "final"
        recs = [json.loads(x) for x in (out / name / "metrics.jsonl").read_text().splitlines()]
        assert [r["stage"] for r in recs][0] == "compress"  # pre-training was not repeated
    assert (out / "pretrain" / "pretrain.pt").is_file()
