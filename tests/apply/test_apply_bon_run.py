"""Best-of-N curves on constructed pools, and `warm bon` end to end on tiny reward models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from warm.apply.best_of_n.curves import ORACLE, bon_curves, point_at
from warm.apply.best_of_n.candidates import candidate_pool_from_rows, load_candidates
from warm.cli import app
from warm.errors import WarmError


def constructed_pool(n_prompts=4, k=5, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"prompt_id": p, "prompt": f"question {p}", "candidate": f"answer {p}.{c}", "gold": float(rng.normal())}
            for p in range(n_prompts) for c in range(k)]
    return candidate_pool_from_rows(rows)


def test_a_selector_equal_to_gold_is_the_oracle_and_its_inverse_the_worst():
    pool = constructed_pool()
    curves = bon_curves(pool, {"perfect": pool.gold, "inverse": -pool.gold}, [1, 2, 5], reference="inverse",
                        n_boot=200)
    top = [max(pool.gold[g]) for g in pool.groups]
    bottom = [min(pool.gold[g]) for g in pool.groups]
    assert point_at(curves, "perfect", 5)["gold"]["mean"] == pytest.approx(np.mean(top))
    assert point_at(curves, ORACLE, 5)["gold"]["mean"] == pytest.approx(np.mean(top))
    assert point_at(curves, "inverse", 5)["gold"]["mean"] == pytest.approx(np.mean(bottom))
    # N = 1 is random selection for everyone: no gain, a 50% win rate against random and against each other
    for name in ("perfect", "inverse"):
        p1 = point_at(curves, name, 1)
        assert p1["gain"]["mean"] == pytest.approx(0.0, abs=1e-12)
        assert p1["win_vs_random"]["mean"] == pytest.approx(0.5)
        assert p1["win_vs_reference"]["mean"] == pytest.approx(0.5)
    # at N = pool size the perfect pick beats the inverse pick on every prompt (distinct golds)
    assert point_at(curves, "perfect", 5)["win_vs_reference"]["mean"] == pytest.approx(1.0)
    assert point_at(curves, "perfect", 5)["win_vs_random"]["mean"] == pytest.approx(0.9)  # (4 + 0.5) / 5
    assert curves["kl"][0] == 0.0 and curves["selectors"]["perfect"]["fit"]["alpha"] > 0


def test_prompts_smaller_than_n_are_left_out_of_that_n():
    rows = [{"prompt_id": 0, "prompt": "a", "candidate": f"x{c}", "gold": float(c)} for c in range(4)]
    rows += [{"prompt_id": 1, "prompt": "b", "candidate": f"y{c}", "gold": float(c)} for c in range(2)]
    pool = candidate_pool_from_rows(rows)
    curves = bon_curves(pool, {"s": pool.gold}, [1, 2, 4], n_boot=50)
    assert [point_at(curves, "s", n)["gold"]["n_prompts"] for n in (1, 2, 4)] == [2, 2, 1]


def test_the_gao_fit_uses_one_prompt_set_at_every_n():
    # Prompt 0 (4 candidates) reaches N = 4; prompt 1 (2 candidates) does not, so the fit sees prompt 0 only.
    rows = [{"prompt_id": 0, "prompt": "a", "candidate": f"x{c}", "gold": float(c)} for c in range(4)]
    rows += [{"prompt_id": 1, "prompt": "b", "candidate": f"y{c}", "gold": 10.0 * c} for c in range(2)]
    pool = candidate_pool_from_rows(rows)
    ns = [1, 2, 4]
    curves = bon_curves(pool, {"s": pool.gold}, ns, n_boot=50, oracle=False)
    alone = bon_curves(pool.subset(pool.groups[0]), {"s": pool.gold[pool.groups[0]]}, ns, n_boot=50, oracle=False)
    assert curves["fit_prompts"] == 1
    assert curves["selectors"]["s"]["fit"] == pytest.approx(alone["selectors"]["s"]["fit"])
    # while the points themselves still average every prompt that reaches each N
    assert point_at(curves, "s", 2)["gain"]["mean"] != pytest.approx(point_at(alone, "s", 2)["gain"]["mean"])


def test_candidate_files_name_the_missing_field(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"instruction_id": 1, "instruction": "q", "gold": 0.5}) + "\n")
    with pytest.raises(WarmError, match=r"c\.jsonl: no 'candidate' column \(looked for candidate, output"):
        load_candidates(str(path))
    pool = constructed_pool()
    with pytest.raises(WarmError, match="selector 's': \\(3,\\) scores for 20 candidates"):
        bon_curves(pool, {"s": np.zeros(3)}, [1])


def write_candidates(path, with_gold=True):
    words = ["good", "helpful", "correct", "bad", "wrong", "no"]
    rows = []
    for p in range(3):
        for c, word in enumerate(words):
            row = {"instruction_id": p, "instruction": f"what is a cat {p}", "output": f"a cat is {word}",
                   "generator": f"g{c}"}
            if with_gold:
                row["gold"] = 1.0 if c < 3 else 0.0
            rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_warm_bon_end_to_end_and_cached(tmp_path, tiny_model_factory):
    a, b = tiny_model_factory("a", seed=1), tiny_model_factory("b", seed=2)
    cands = write_candidates(tmp_path / "cands.jsonl")
    out = tmp_path / "bon"
    args = ["bon", "--candidates", str(cands), "--selector", f"A={a}", "--selector", f"ENS={a},{b}",
            "--selector", f"MIN=min:{a},{b}", "--reference", "A", "--n", "1,2,6", "--out", str(out),
            "--max-length", "32", "--n-boot", "50", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    curves = json.loads((out / "bon.json").read_text())
    assert set(curves["selectors"]) == {"A", "ENS", "MIN", ORACLE}
    assert (out / "bon.png").stat().st_size > 0 and "| A |" in (out / "report.md").read_text()
    assert len(list((out / "scores").glob("*.npy"))) == 2  # two models, each scored once for three selectors
    # the oracle picks a gold-1 candidate whenever the subset holds one
    assert point_at(curves, ORACLE, 6)["gold"]["mean"] == pytest.approx(1.0)
    cached = {p.name: p.stat().st_mtime_ns for p in (out / "scores").glob("*.npy")}
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "scores").glob("*.npy")} == cached
    assert json.loads((out / "bon.json").read_text())["selectors"]["ENS"] == curves["selectors"]["ENS"]


def test_warm_bon_with_a_control_reward_model_as_gold(tmp_path, tiny_model_factory):
    a, judge = tiny_model_factory("a", seed=1), tiny_model_factory("judge", seed=3)
    cands = write_candidates(tmp_path / "cands.jsonl", with_gold=False)
    base = ["bon", "--candidates", str(cands), "--selector", f"A={a}", "--out", str(tmp_path / "o"), "--quiet",
            "--max-length", "32", "--n-boot", "20"]
    missing = CliRunner().invoke(app, base)
    assert missing.exit_code == 2 and "no 'gold' column; give a control reward model with --gold" in missing.output
    result = CliRunner().invoke(app, base + ["--selector", f"J={judge}", "--gold", str(judge)])
    assert result.exit_code == 0, result.output
    curves = json.loads((tmp_path / "o" / "bon.json").read_text())
    # a selector that IS the gold model is the oracle
    for n in curves["ns"]:
        assert point_at(curves, "J", n)["gold"]["mean"] == pytest.approx(point_at(curves, ORACLE, n)["gold"]["mean"])


def test_bad_n_values_are_one_line_errors(tmp_path, tiny_model_factory):
    cands = write_candidates(tmp_path / "cands.jsonl")
    a = tiny_model_factory("a", seed=1)
    base = ["bon", "--candidates", str(cands), "--selector", f"A={a}", "--out", str(tmp_path / "o"), "--quiet"]
    result = CliRunner().invoke(app, base + ["--n", "1,two"])
    assert result.exit_code == 2 and "--n '1,two': expected comma-separated integers" in result.output
    result = CliRunner().invoke(app, base + ["--n", "1,7"])
    assert result.exit_code == 2 and "between 1 and the largest pool (6 candidates)" in result.output
