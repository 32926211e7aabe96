"""`evaluate()` end to end on tiny models: schema, one load and one scoring pass per model, exact accuracies."""

import json

import numpy as np
import pytest
from conftest import make_tiny_model_dir

import warm.evaluate.pairwise as pairwise
from warm.data.formats import PreferenceData
from warm.errors import WarmError
from warm.metrics import pairwise_correct
from warm.evaluate.pairwise import evaluate
from warm.models.loading import load_tokenizer
from warm.score.scorer import RewardModelScorer

from conftest import CHOSEN, CORRUPTED, PROMPTS, REJECTED  # noqa: E402  (the small shared split)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return {name: str(make_tiny_model_dir(root / name, seed=seed)) for name, seed in [("a", 1), ("b", 2), ("c", 3)]}


@pytest.fixture(scope="module")
def splits():
    return {
        "test": PreferenceData("test.jsonl", PROMPTS, CHOSEN, REJECTED, corrupted=CORRUPTED),
        "ood": PreferenceData("ood.jsonl", PROMPTS[::-1], REJECTED[::-1], CHOSEN[::-1]),
    }


@pytest.fixture(scope="module")
def counted(dirs, splits):
    """Run evaluate once with RewardModelScorer counted: loads per directory, scoring calls per directory."""
    loads, calls = [], []

    class Counting(RewardModelScorer):
        def __init__(self, path, **kwargs):
            loads.append(path)
            super().__init__(path, **kwargs)

        def score_sequences(self, seqs, progress=False, desc=None):
            calls.append(self.path)
            return super().score_sequences(seqs, progress=progress, desc=desc)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pairwise, "RewardModelScorer", Counting)
        metrics, scores = evaluate(
            {"warm": dirs["c"], "a_again": dirs["a"]},
            {"ens": ([dirs["a"], dirs["b"]], "mean", 1.0), "pess": ([dirs["a"], dirs["b"]], "mean_minus_std", 0.5)},
            splits, max_length=32, batch_size=3, n_boot=200, seed=0, progress=False, return_scores=True,
        )
    return metrics, scores, loads, calls


def test_each_model_is_loaded_once_and_scores_each_split_once(counted, dirs):
    _, _, loads, calls = counted
    assert sorted(loads) == sorted(dirs.values())  # a is a model, and a member of two ensembles: loaded once
    assert sorted(calls) == sorted(list(dirs.values()) * 2)  # once per split


def test_schema(counted):
    metrics, _, _, _ = counted
    json.dumps(metrics, allow_nan=False)
    assert set(metrics) == {"config", "splits"}
    scorers = metrics["config"]["scorers"]
    assert list(scorers) == ["warm", "a_again", "ens", "ens/a", "ens/b", "pess", "pess/a", "pess/b"]
    assert scorers["ens"] == {"kind": "ensemble", "members": ["ens/a", "ens/b"], "reduction": "mean", "lam": 1.0}
    assert scorers["pess/b"]["kind"] == "member" and scorers["warm"]["kind"] == "model"
    test = metrics["splits"]["test"]
    assert test["n_pairs"] == 10 and test["n_sequences"] == 19 and test["n_corrupted"] == 3
    assert test["n_length_adversarial"] == 3 and test["source"] == "test.jsonl"
    assert set(test["length_baseline"]) == {"accuracy", "lo", "hi", "n"}
    for entry in test["scorers"].values():
        assert {"accuracy", "lo", "hi", "n", "length_adversarial", "corrupted", "clean"} <= set(entry)
        assert entry["lo"] <= entry["accuracy"] <= entry["hi"] and entry["corrupted"]["n"] == 3
        assert entry["clean"]["n"] == 7 and entry["length_adversarial"]["n"] == 3
    assert "corrupted" not in metrics["splits"]["ood"]["scorers"]["warm"]
    assert metrics["splits"]["ood"]["n_corrupted"] is None
    # a_again is ensemble member a under another name: not a challenger
    assert set(test["comparisons"]) == {"warm - ens", "warm - best member of ens", "warm - pess", "warm - best member of pess"}
    best = test["comparisons"]["warm - best member of ens"]
    assert best["best_member"] in ("ens/a", "ens/b") and set(best) == {"diff", "lo", "hi", "best_member"}


def test_accuracies_match_a_manual_computation(counted, dirs):
    metrics, scores, _, _ = counted
    scorers = {k: RewardModelScorer(v, max_length=32) for k, v in dirs.items()}
    chosen = {k: s.score_texts(PROMPTS, CHOSEN) for k, s in scorers.items()}
    rejected = {k: s.score_texts(PROMPTS, REJECTED) for k, s in scorers.items()}
    split = metrics["splits"]["test"]
    corrupted = np.array(CORRUPTED)
    for name, key in [("warm", "c"), ("a_again", "a"), ("ens/a", "a"), ("pess/b", "b")]:
        np.testing.assert_allclose(scores["test"][name]["chosen"], chosen[key], atol=1e-5)
        correct = pairwise_correct(chosen[key], rejected[key])
        assert split["scorers"][name]["accuracy"] == pytest.approx(correct.mean())
        assert split["scorers"][name]["corrupted"]["accuracy"] == pytest.approx(correct[corrupted].mean())
    ens_chosen, ens_rejected = (chosen["a"] + chosen["b"]) / 2, (rejected["a"] + rejected["b"]) / 2
    np.testing.assert_allclose(scores["test"]["ens"]["chosen"], ens_chosen, atol=1e-5)
    assert split["scorers"]["ens"]["accuracy"] == pytest.approx(pairwise_correct(ens_chosen, ens_rejected).mean())
    lengths = np.array([len(c) - len(r) for c, r in zip(CHOSEN, REJECTED)])
    assert split["length_baseline"]["accuracy"] == pytest.approx(np.where(lengths > 0, 1, np.where(lengths == 0, 0.5, 0)).mean())
    members = {m: split["scorers"][m]["accuracy"] for m in ("ens/a", "ens/b")}
    diff = split["comparisons"]["warm - best member of ens"]
    assert diff["diff"] == pytest.approx(split["scorers"]["warm"]["accuracy"] - max(members.values()))


def test_each_model_reads_the_splits_by_its_own_contract(dirs, splits, tiny_model_factory):
    other = tiny_model_factory("odd", seed=4)
    tokenizer = load_tokenizer(str(other))
    tokenizer.add_tokens(["zebra"])  # another vocabulary
    tokenizer.save_pretrained(other)
    metrics, scores = evaluate({"a": dirs["a"], "odd_one": str(other)}, {}, splits, max_length=16, progress=False,
                               return_scores=True)
    for name, path in (("a", dirs["a"]), ("odd_one", str(other))):
        chosen, rejected = RewardModelScorer(path, max_length=16).score_data(splits["test"])
        np.testing.assert_allclose(scores["test"][name]["chosen"], chosen, atol=1e-6)
        np.testing.assert_allclose(scores["test"][name]["rejected"], rejected, atol=1e-6)
    assert metrics["config"]["contracts"][str(other)]["max_length"] == 16


def test_refuses_bad_input(dirs, splits):
    with pytest.raises(WarmError, match="unknown ensemble reduction"):
        evaluate({}, {"e": ([dirs["a"]], "median", 1.0)}, splits, progress=False)
    with pytest.raises(WarmError, match="given twice"):
        evaluate({"e/a": dirs["a"]}, {"e": ([dirs["a"]], "mean", 1.0)}, splits, progress=False)
    with pytest.raises(WarmError, match="no splits"):
        evaluate({"a": dirs["a"]}, {}, {}, progress=False)
    with pytest.raises(WarmError, match="nothing to evaluate"):
        evaluate({}, {}, splits, progress=False)
