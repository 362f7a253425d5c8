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
    assert series("naive-l1e-05-s2") == "naive"
    with pytest.raises(ValueError, match="not a run name"):
        series("lasso-l1-s0")


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


def _row(series: str, method: str, knob: float, seed: int, cr: float, top1: float) -> dict:
    pe = {"method": method, "lam": knob if method == "naive" else 1.0, "r": knob}
    return {"series": series, "pe": pe, "seed": seed, "cr": cr, "density": 16 / cr,
            "emu_top1": top1}  # fmt: skip


def test_frontier_points_average_seeds_and_interpolate_without_extrapolating():
    from ternpynq.train.frontier_report import interpolate, points, summarize

    rows = {
        "a0": _row("naive", "naive", 0.1, 0, 20.0, 90.0),
        "a1": _row("naive", "naive", 0.1, 1, 22.0, 88.0),  # same strength, another seed
        "b0": _row("naive", "naive", 0.2, 0, 29.0, 80.0),
        "c0": _row("wpc-rank", "wpc", 0.3, 0, 23.0, 91.0),
    }
    front = points(rows, "naive")
    assert [(p["strength"], p["seeds"], p["cr"], p["top1"]) for p in front] == [
        (0.1, 2, 21.0, 89.0), (0.2, 1, 29.0, 80.0)
    ]  # fmt: skip
    assert (front[0]["top1_min"], front[0]["top1_max"]) == (88.0, 90.0)
    assert interpolate(front, 21.0) == 89.0
    assert interpolate(front, 25.0) == pytest.approx(89.0 - 4 * 9.0 / 8)
    assert interpolate(front, 30.0) is None and interpolate(front, 20.0) is None
    summary = summarize(rows)
    assert summary["wpc-rank"]["at_cr"] == {"21": None, "25": None}  # one point covers no range
    assert summary["naive"]["at_cr"]["21"] == 89.0
    # each seed read off its own runs: seed 1's single point reaches neither CR
    by_seed = summary["naive"]["at_cr_by_seed"]
    assert by_seed["21"]["0"] == pytest.approx(90.0 - 10.0 / 9) and by_seed["21"]["1"] is None
    assert by_seed["25"] == {"0": pytest.approx(90.0 - 50.0 / 9), "1": None}


def test_report_line_gives_each_seeds_own_read_off():
    from ternpynq.train.frontier_report import describe, summarize

    # seed 0: CR 20 -> 90 %, CR 26 -> 84 %; seed 1 one CR further and 2 points lower
    rows = {}
    for seed in (0, 1):
        for lam, cr, top1 in ((0.1, 20.0, 90.0), (0.2, 26.0, 84.0)):
            rows[f"naive-l{lam}-s{seed}"] = _row(
                "naive", "naive", lam, seed, cr + seed, top1 - 2 * seed
            )
    line = describe(summarize(rows)["naive"])
    # seed 0 reads 89 at CR 21 and 85 at CR 25, seed 1 88 and 84; the mean frontier
    # (CR 20.5 -> 89, CR 26.5 -> 83) reads 88.5 and 84.5
    assert line == (
        "CR 21: 88.50 (per seed 88.00-89.00, 2 seeds); CR 25: 84.50 (per seed 84.00-85.00, 2 seeds)"
    )


def test_report_writes_json_and_plot(tmp_path):
    from ternpynq.train.frontier_report import main as report

    for name, row in {"naive-l0.1-s0": _row("naive", "naive", 0.1, 0, 20.0, 90.0),
                      "fp-s0": _row("fp", "fp", 0.0, 0, 16.0, 92.0)}.items():  # fmt: skip
        (tmp_path / "grid" / name).mkdir(parents=True)
        (tmp_path / "grid" / name / "row.json").write_text(json.dumps(row))
    assert report([str(tmp_path / "grid"), "--out", str(tmp_path / "res")]) == 0
    data = json.loads((tmp_path / "res" / "frontier.json").read_text())
    assert set(data["summary"]) == {"naive", "fp"} and len(data["rows"]) == 2
    assert (tmp_path / "res" / "frontier.png").stat().st_size > 1000
    assert report([str(tmp_path / "empty"), "--out", str(tmp_path / "res")]) == 1


def test_calibration_spreads_naive_lambdas_over_the_norm_quantiles(pretrained):
    from ternpynq.train.frontier import calibrate, shrink_per_lambda
    from ternpynq.train.loop import cosine_lr

    assert shrink_per_lambda(0.02, 4) == sum(cosine_lr(0.02, t, 4) for t in range(4))
    cal = calibrate(str(pretrained), (0.2, 0.5), 0.02, 4)
    low, high = cal["naive"]
    assert 0 < low < high and cal["wpc_lam"] == pytest.approx(2 * high, rel=0.01)
