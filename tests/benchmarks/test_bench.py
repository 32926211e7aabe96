"""`make bench` (benchmarks/bench.py) at a tiny size: every section runs, the JSON holds every row, and each ratio is
warm / peer of the raw numbers recorded beside it. mergekit's environment is absent here, so its rows say "not run"."""

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_backbone_dir, make_tiny_model_dir, make_tiny_policy_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks import bench, bench_report  # noqa: E402
from warm.models.policy import SOURCE_FILE  # noqa: E402

MERGEKIT = REPO_ROOT / "runs/bench-venv-mergekit/bin/mergekit-yaml"


def test_rotate_puts_each_tool_first_in_turn():
    assert [bench.rotate(("a", "b", "c"), rep) for rep in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_row_ratios_per_repeat_then_min_median_max():
    row = bench_report.make_row("k", "figure", "warm", "peer", "s", ("<=", 0.5), [(1.0, 4.0), (3.0, 4.0), (2.0, 2.0)])
    assert [s["ratio"] for s in row["samples"]] == [0.25, 0.75, 1.0]
    assert row["ratio"] == {"min": 0.25, "median": 0.75, "max": 1.0} and row["met"] is False
    assert row["warm_median"] == 2.0 and row["peer_median"] == 4.0
    skipped = bench_report.make_row("k", "figure", "warm", "peer", "s", None, [], not_run="no tool")
    assert skipped["status"] == "not run" and skipped["ratio"] is None and skipped["reason"] == "no tool"


def raw_pairs(raw: dict) -> dict:
    """(warm, peer) per repeat of each measured row, read straight from the raw timings."""
    train, serve, merge = raw["train"]["32"], raw["serve"]["samples"], raw["merge"]["M"]["2"]
    return {
        "train_32": [(s["warm"]["pairs_per_second"], s["trl"]["pairs_per_second"]) for s in train["samples"]],
        "mfu_32": [(s["warm"]["pairs_per_second"] * train["flops_per_pair"], s["gemm_flops_per_second"])
                   for s in train["samples"]],
        "score_32": [(s["warm"]["sequences_per_second"], s["transformers"]["sequences_per_second"])
                     for s in raw["score"]["32"]["samples"]],
        "serve_overhead": [(s["http"]["items_per_second"], s["in_process"]["items_per_second"]) for s in serve],
        "serve_warm_vs_ens": [(s["http"]["items_per_second"], s["ens_http"]["items_per_second"]) for s in serve],
        "merge_io_M2": [(s["warm"]["wall_s"], merge["io_bound_s"]) for s in merge["samples"]],
    }


def test_bench_tiny(tmp_path):
    backbone = make_tiny_backbone_dir(tmp_path / "backbone")
    merge_base = make_tiny_model_dir(tmp_path / "merge-base")
    (merge_base / SOURCE_FILE).write_text(json.dumps({"source": "tiny test model"}))
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    bench.main(["--work", str(tmp_path / "work"), "--out-json", str(out_json), "--out-md", str(out_md),
                "--model", str(backbone), "--repeats", "1", "--lengths", "32", "--train-goal-length", "32",
                "--batch-size", "2", "--steps", "1", "--warmup-steps", "1", "--score-pairs", "4",
                "--serve-members", "2", "--serve-clients", "2", "--serve-items", "2", "--serve-duration", "0.5",
                "--serve-max-length", "32", "--inproc-items", "8", "--merge-members", "2",
                "--merge-base", str(merge_base), "--probe-gb", "0.01", "--mergekit", str(tmp_path / "no-mergekit")])
    result = json.loads(out_json.read_text())
    assert {"date", "machine", "versions", "load_average", "settings", "rows", "checks", "raw"} <= set(result)
    assert result["versions"]["mergekit"] == "not installed" and "trl" in result["versions"]
    assert len(result["load_average"]["start"]) == 3 and result["machine"]["cores"] >= 1
    rows = {row["key"]: row for row in result["rows"]}
    assert set(rows) == {"train_32", "mfu_32", "score_32", "serve_overhead", "serve_warm_vs_ens",
                         "merge_wall_M2", "merge_rss_M2", "merge_io_M2"}
    for key in ("merge_wall_M2", "merge_rss_M2"):  # no number where mergekit did not run
        assert rows[key]["status"] == "not run" and "missing" in rows[key]["reason"]
        assert rows[key]["ratio"] is None and rows[key]["samples"] == [] and rows[key]["met"] is None
    for key, pairs in raw_pairs(result["raw"]).items():
        row = rows[key]
        assert row["status"] == "measured" and [(s["warm"], s["peer"]) for s in row["samples"]] == pairs, key
        ratios = [w / p for w, p in pairs]
        assert [s["ratio"] for s in row["samples"]] == ratios and len(ratios) == 1, key
        assert all(math.isfinite(r) and r > 0 for r in ratios), key
        assert row["ratio"] == {"min": ratios[0], "median": ratios[0], "max": ratios[0]}, key
        assert isinstance(row["met"], bool), key
    # TRL tokenised the same text into sequences of warm's lengths (give or take a word cut by the truncation)
    train = result["raw"]["train"]["32"]
    assert abs(train["samples"][0]["trl"]["tokens_per_sequence"] - train["tokens_per_sequence"]) < 0.05 * 32
    page = out_md.read_text()
    assert "| figure | warm | side by side with |" in page and page.count("| not run:") == 2


@pytest.mark.skipif(not MERGEKIT.exists(), reason="mergekit's environment is not set up (make bench does it)")
def test_bench_merge_rows_against_mergekit(tmp_path):
    base = make_tiny_policy_dir(tmp_path / "llama")  # an architecture mergekit knows
    (base / SOURCE_FILE).write_text(json.dumps({"source": "tiny test model"}))
    out_json = tmp_path / "bench.json"
    bench.main(["--sections", "merge", "--work", str(tmp_path / "work"), "--out-json", str(out_json),
                "--out-md", str(tmp_path / "bench.md"), "--repeats", "1", "--merge-members", "2",
                "--merge-base", str(base), "--probe-gb", "0.01", "--mergekit", str(MERGEKIT)])
    result = json.loads(out_json.read_text())
    rows = {row["key"]: row for row in result["rows"]}
    sample = result["raw"]["merge"]["M"]["2"]["samples"][0]
    for key, field in (("merge_wall_M2", "wall_s"), ("merge_rss_M2", "peak_rss_MiB")):
        row = rows[key]
        assert row["status"] == "measured"
        assert row["samples"][0]["ratio"] == sample["warm"][field] / sample["mergekit"][field]
    assert result["raw"]["merge"]["M"]["2"]["equality"]["mergekit_vs_warm"]["allclose"]
    assert rows["train_128"]["status"] == "not run" and "not selected" in rows["train_128"]["reason"]
