"""The frontier grid: plan, one shared pre-training, runs exported and evaluated through emu."""

import json

import pytest

from ternpynq.train.config import StageConfig, TernaryPEConfig, TrainConfig
from ternpynq.train.frontier import main, plan, series
from ternpynq.train.pipeline import Run


def test_plan_orders_the_compared_methods_first_and_names_each_strength():
    names = [n for n, _ in plan({"naive": (0.1,), "wpc-rank": (0.3,), "wpc-mean": (),
                                  "wpc-rank-sg": (0.3,)})]  # fmt: skip
    assert names == ["naive-l0.1-s0", "wpc-rank-r0.3-s0", "fp-s0", "tern-s0", "wpc-rank-sg-r0.3-s0"]
    flags = dict(plan({"wpc-rank-sg": (0.3,)}, wpc_lam=0.5))["wpc-rank-sg-r0.3-s0"]
    assert flags == ["--method", "wpc", "--tau-mode", "rank", "--solver", "subgradient",
                     "--lam", "0.5", "--r", "0.3", "--seed", "0"]  # fmt: skip
    assert [series(n) for n in names] == ["naive", "wpc-rank", "fp", "tern", "wpc-rank-sg"]
    assert len(plan(seeds=(0, 1, 2))) == 3 * len(plan())


@pytest.fixture(scope="module")
def pretrained(fashion_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("frontier") / "pretrain"
    cfg = TrainConfig(data=str(fashion_dir), pretrain=StageConfig(1, 0.1), train_subset=256)
    Run(cfg, TernaryPEConfig(method="fp"), out).run(("pretrain",))
    return out / "pretrain.pt"


def test_grid_runs_measure_through_emu_and_resume(fashion_dir, pretrained, tmp_path):
    out = tmp_path / "grid"
    argv = ["--pretrained", str(pretrained), "--out", str(out), "--data", str(fashion_dir),
            "--subset", "256", "--epochs", "1,1", "--only", "wpc-rank-r0.5-s0",
            "--strengths", "wpc-rank=0.5", "--wpc-lam", "200"]  # fmt: skip
    assert main(argv) == 0
    row = json.loads((out / "wpc-rank-r0.5-s0" / "row.json").read_text())
    assert row["series"] == "wpc-rank" and row["pe"]["r"] == 0.5 and row["pe"]["tau_mode"] == "rank"
    assert row["images"] == 200 and 0 <= row["emu_top1"] <= 100
    assert row["density"] < 1.0 and row["cr"] > 16.0  # the penalty alone pruned
    assert json.loads((out / "rows.json").read_text()).keys() == {"wpc-rank-r0.5-s0"}
    config = json.loads((out / "wpc-rank-r0.5-s0" / "config.json").read_text())
    assert config["train"]["pretrain"]["epochs"] == 1 and config["pe"]["target_density"] is None
    before = (out / "wpc-rank-r0.5-s0" / "row.json").stat().st_mtime_ns
    assert main(argv) == 0  # a measured run is not redone
    assert (out / "wpc-rank-r0.5-s0" / "row.json").stat().st_mtime_ns == before


def test_bad_series_is_one_line_error(capsys):
    with pytest.raises(SystemExit):
        main(["--pretrained", "x.pt", "--out", "o", "--strengths", "lasso=1"])
    assert "unknown series 'lasso'" in capsys.readouterr().err
