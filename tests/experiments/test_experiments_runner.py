"""The experiments runner end to end on a tiny model and tiny pool splits (seconds), and its caches."""

import json
from pathlib import Path

import pytest
import yaml

from warm.errors import WarmError
from warm.experiments.config import load_experiment
from warm.experiments.runner import run_experiment

REPO = Path(__file__).resolve().parents[2]
POOL = str(REPO.parent / "shared" / "data" / "alpacaeval_gold" / "responses.jsonl.gz")


def _config(tmp_path, tiny_backbone_dir, name, kind, params, **data):
    # shared/ sits beside every checkout and CI run (README); its absence is a broken set-up, not a reason to skip.
    assert Path(POOL).is_file(), f"{POOL}: the shared pool is missing"
    cfg = {"name": name, "kind": kind, "eval_train_pairs": 16, "n_boot": 50,
           "data": {"source": POOL, "n_train": 24, "n_val": 12, "n_test": 20, **data},
           "training": {"model": str(tiny_backbone_dir), "epochs": 1, "batch_size": 8, "max_length": 32,
                        "precision": "fp32"},
           "params": params}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_corruption_sweep_runs_caches_and_replots(tmp_path, tiny_backbone_dir):
    path = _config(tmp_path, tiny_backbone_dir, "sweep", "corruption_sweep",
                   {"fractions": [0.0, 0.25], "group": {"members": 2, "lr": [1e-3], "dropout": [0.1]}})
    root = tmp_path / "ws"
    metrics = run_experiment(path, root=root, progress=False)
    levels = metrics["levels"]
    assert [lv["fraction"] for lv in levels] == [0.0, 0.25]
    corrupted = levels[1]["splits"]["train"]
    assert corrupted["subset_sizes"]["corrupted"] == 4  # 25% of the 16 evaluated training pairs (24 trained)
    assert {"m00", "m01", "WA", "ENS"} <= set(corrupted["scorers"])
    assert "WA - ENS" in corrupted["comparisons"]
    assert (root / "sweep" / "sweep.png").exists() and (root / "sweep" / "section.md").exists()
    members_before = sorted(p.name for p in (root / "members").iterdir())
    assert len(members_before) == 4  # 2 levels x 2 members
    # A second experiment asking for the same members trains nothing new and scores nothing new.
    scores_before = len(list((root / "scores").iterdir()))
    path2 = _config(tmp_path, tiny_backbone_dir, "single", "corruption",
                    {"fractions": [0.25], "group": {"members": 2, "lr": [1e-3], "dropout": [0.1]}})
    single = run_experiment(path2, root=root, progress=False)
    assert sorted(p.name for p in (root / "members").iterdir()) == members_before
    assert len(list((root / "scores").iterdir())) == scores_before
    assert single["levels"][0]["splits"]["id"]["scorers"]["WA"] == corrupted_level(metrics)["splits"]["id"]["scorers"]["WA"]
    assert sum(single["histogram"]["groups"]["train corrupted"]["counts"]) <= 4
    # Re-plotting reads the JSON only.
    (root / "single" / "wa_minus_ens_margin.png").unlink()
    run_experiment(path2, root=root, replot=True, progress=False)
    assert (root / "single" / "wa_minus_ens_margin.png").exists()
    assert json.loads((root / "single" / "metrics.json").read_text())["run"]["scale"] == 1.0


def corrupted_level(metrics):
    return next(lv for lv in metrics["levels"] if lv["fraction"] == 0.25)


def test_num_members_orders(tmp_path, tiny_backbone_dir):
    path = _config(tmp_path, tiny_backbone_dir, "nm", "num_members",
                   {"group": {"members": 3, "lr": [1e-3, 5e-4], "dropout": [0.1]}})
    metrics = run_experiment(path, root=tmp_path / "ws", progress=False)
    val = metrics["val_accuracy"]
    orders = metrics["orders"]
    assert orders["best-first"] == sorted(val, key=lambda n: (-val[n], n))
    assert orders["worst-first"] == orders["best-first"][::-1]
    rows = metrics["splits"]["test_id"]["orders"]["best-first"]
    assert [r["M"] for r in rows] == [1, 2, 3]
    # M = 1: the weight average of one member is that member, so WA and ENS agree exactly.
    assert rows[0]["WA"]["all"]["accuracy"] == rows[0]["ENS"]["all"]["accuracy"]


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: corruption\ndata: {n_trian: 5}\n")
    with pytest.raises(WarmError, match=r"data: unknown key\(s\) n_trian"):
        load_experiment(bad)
    bad.write_text("name: x\nkind: nope\n")
    with pytest.raises(WarmError, match="unknown experiment kind 'nope'"):
        run_experiment(bad, root=tmp_path / "ws", progress=False)


def test_shipped_configs_parse():
    shipped = sorted((REPO / "experiments").glob("*.yaml"))
    assert len(shipped) >= 6, f"{REPO / 'experiments'}: the shipped experiment configs are missing"
    for path in shipped:
        config = load_experiment(path)
        assert path.read_text().startswith(f"# warm experiment experiments/{path.name}"), path
        from warm.experiments.runner import kind_module

        kind_module(config.kind)


def test_lmc_diversity_all_sources(tmp_path, tiny_backbone_dir):
    path = _config(tmp_path, tiny_backbone_dir, "lmc", "lmc_diversity",
                   {"lr": 1e-3, "lr_b": 5e-4, "lambdas": [0.0, 0.5, 1.0], "sft_steps": [2, 3]})
    metrics = run_experiment(path, root=tmp_path / "ws", progress=False)
    assert set(metrics["sources"]) == {"checkpoints", "data_order", "learning_rate", "baklava"}
    for source, curves in metrics["sources"].items():
        ood = curves["splits"]["ood"]["curves"]
        assert [p["lambda"] for p in ood] == [0.0, 0.5, 1.0]
        assert ood[0]["wa"]["accuracy"] == ood[0]["ens"]["accuracy"]  # λ = 0 is model A either way
        assert "length_balanced" in ood[1]
    a, b = metrics["sources"]["checkpoints"]["models"].values()
    assert "checkpoints/step-" in a and b.endswith("members/m00")
    assert (tmp_path / "ws" / "lmc" / "lmc.png").exists()


def test_best_of_n_on_heldout_candidates(tmp_path, tiny_backbone_dir):
    path = _config(tmp_path, tiny_backbone_dir, "bon", "best_of_n",
                   {"group": {"members": 2, "lr": [1e-3], "dropout": [0.1]}, "fractions": [0.0],
                    "warm_sizes": [2], "ens_sizes": [2], "reductions": ["mean", "min"], "tier": "ood",
                    "n_prompts": 3})
    root = tmp_path / "ws"
    metrics = run_experiment(path, root=root, progress=False)
    assert metrics["pool"]["prompts"] == 3 and metrics["pool"]["tier"] == "ood"
    # every ood-tier generator answered every instruction: 20 candidates per prompt, N from 1 to 20
    curves = metrics["levels"][0]["curves"]
    assert curves["ns"] == [1, 2, 4, 8, 16, 20] and metrics["pool"]["candidates"] == 60
    expected = {"m00", "m01", "WARM M=2", "ENS M=2 mean", "ENS M=2 min", "longest answer", "best member",
                "oracle (gold)"}
    assert set(curves["selectors"]) == expected
    oracle = curves["selectors"]["oracle (gold)"]["points"]
    assert all(p["gold"]["mean"] >= s["points"][i]["gold"]["mean"] - 1e-12
               for s in curves["selectors"].values() for i, p in enumerate(oracle))
    comps = metrics["levels"][0]["comparisons"]
    assert {(c["a"], c["b"]) for c in comps} == {("WARM M=2", "ENS M=2 mean"), ("WARM M=2", "best member"),
                                                 ("WARM M=2", "longest answer")}
    assert (root / "bon" / "bon_0pct.png").exists() and "WARM M=2 − ENS M=2 mean" in (root / "bon" / "section.md").read_text()
    # the held-out candidates are never training instructions
    train = {json.loads(line)["prompt"] for line in _read_gz(next((root / "data").iterdir()) / "train.jsonl.gz")}
    assert not train & {c for c in _pool_prompts(metrics)}


def _read_gz(path):
    import gzip

    with gzip.open(path, "rt") as handle:
        return [line for line in handle if line.strip()]


def _pool_prompts(metrics):
    from warm.data.alpacaeval import read_pool, split_instructions

    rows = read_pool(POOL)
    _, _, heldout = split_instructions(rows, 0, 0.2, 0.1)
    return {r["instruction"] for r in rows if r["instruction_id"] in set(heldout)}


def test_control_rm_regresses_on_training_instructions_only(tmp_path, tiny_backbone_dir):
    path = _config(tmp_path, tiny_backbone_dir, "control", "control_rm",
                   {"group": {"members": 2, "lr": [1e-3], "dropout": [0.1]}, "fraction": 0.25,
                    "warm_sizes": [2], "ens_sizes": [2], "lr": 1e-3, "batch_size": 64, "epochs": 0.02})
    root = tmp_path / "ws"
    metrics = run_experiment(path, root=root, progress=False)
    # every output of the training and validation instructions, both generator tiers
    from warm.data.alpacaeval import read_pool

    heldout_ids = set(split_ids()[2])
    expected = sum(1 for r in read_pool(POOL) if r["instruction_id"] not in heldout_ids)
    assert metrics["control"]["n_examples"] == expected
    for split in ("id", "ood"):
        scorers = metrics["splits"][split]["scorers"]
        assert {"control", "WARM M=2", "ENS M=2", "m00", "m01"} <= set(scorers)
        assert set(metrics["splits"][split]["comparisons"]) == {f"control - {metrics['best_member']}",
                                                                "control - WARM M=2"}
    section = (root / "control" / "section.md").read_text()
    assert "| control |" in section and "the longer answer wins" in section
    # cached: a second run trains nothing new
    (trained,) = (root / "control_models").iterdir()
    stamp = (trained / "model.safetensors").stat().st_mtime_ns
    run_experiment(path, root=root, progress=False)
    assert [p.name for p in (root / "control_models").iterdir()] == [trained.name]
    assert (trained / "model.safetensors").stat().st_mtime_ns == stamp


def split_ids():
    from warm.data.alpacaeval import read_pool, split_instructions

    return split_instructions(read_pool(POOL), 0, 0.2, 0.1)


def test_frontier_points_cost_and_lp_init(tmp_path, tiny_backbone_dir):
    path = _config(tmp_path, tiny_backbone_dir, "frontier", "frontier",
                   {"max_lengths": [32, 48], "group": {"members": 2, "lr": [1e-3], "dropout": [0.1]},
                    "checkpoints": [0.5], "probe_steps": [0, 3], "probe_lengths": [48]})
    metrics = run_experiment(path, root=tmp_path / "ws", progress=False)
    points = metrics["points"]
    assert [(p["max_length"], p["probe_steps"], p["fraction"]) for p in points] == [
        (32, 0, 0.5), (32, 0, 1.0), (48, 0, 0.5), (48, 0, 1.0), (48, 3, 0.5), (48, 3, 1.0)]
    for first, last in zip(points[::2], points[1::2]):
        assert 0 < first["cpu_minutes"] < last["cpu_minutes"] and first["pair_steps"] == last["pair_steps"] // 2
    lp, plain = points[5], points[3]
    assert plain["probe_cpu_minutes"] == 0 < lp["probe_cpu_minutes"] < lp["cpu_minutes"]  # the probe's CPU counts
    for split in ("test_id", "test_ood"):
        entry = points[0]["splits"][split]
        assert 0 <= entry["WA"]["all"]["accuracy"] <= 1 and "length_adversarial" in entry["WA"]
        baseline = metrics["length_baseline"][split]["all"]["accuracy"]
        assert entry["WA - length"]["diff"] == pytest.approx(entry["WA"]["all"]["accuracy"] - baseline)
    assert (tmp_path / "ws" / "frontier" / "frontier.png").is_file()
    import json

    for member in (tmp_path / "ws" / "members").glob("*/members/m00"):  # each curve's members read their length
        contract = json.loads((member / "warm_contract.json").read_text())
        plan = json.loads((member.parent.parent / "plan.json").read_text())
        assert contract["max_length"] == plan["training"]["max_length"] in (32, 48)
