"""Soups: the greedy and top-M decisions on constructed accuracies, and `warm merge --greedy/--top-m` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from conftest import write_pairs
from warm.cli import app
from warm.errors import WarmError
from warm.fileio import read_json
from warm.merge.soups import greedy_soup, rank_members, top_m_soup

# Individual accuracies and those of the soups the greedy procedure asks for (keys: sets of members).
ACCURACY = {
    ("a",): 0.70, ("b",): 0.80, ("c",): 0.60, ("d",): 0.75,
    ("b", "d"): 0.82, ("a", "b", "d"): 0.81, ("b", "c", "d"): 0.82,
}


def accuracy_table(calls: list):
    def accuracy_of(subset: tuple[str, ...]) -> float:
        calls.append(subset)
        return ACCURACY[tuple(sorted(subset))]

    return accuracy_of


def test_greedy_soup_accepts_only_what_does_not_lower_validation_accuracy():
    calls: list = []
    record = greedy_soup(["a", "b", "c", "d"], accuracy_table(calls))
    assert [(d["member"], d["candidate_accuracy"], d["accepted"]) for d in record["decisions"]] == [
        ("b", 0.80, True),   # the best member alone starts the soup
        ("d", 0.82, True),   # 0.82 >= 0.80
        ("a", 0.81, False),  # 0.81 < 0.82: rejected
        ("c", 0.82, True),   # a tie does not drop the accuracy: accepted (Wortsman et al. 2022, Algorithm 1)
    ]
    assert record["selected"] == ["b", "d", "c"] and record["accuracy"] == 0.82
    assert [r["member"] for r in record["ranking"]] == ["b", "d", "a", "c"]
    assert calls[4:] == [("b", "d"), ("b", "d", "a"), ("b", "d", "c")]  # candidates extend the current soup


def test_top_m_and_ranking():
    record = top_m_soup(["a", "b", "c", "d"], 2, accuracy_table([]))
    assert record["selected"] == ["b", "d"] and record["kind"] == "top_m"
    assert [m for m, _ in rank_members(["x", "y", "z"], lambda s: 0.5)] == ["x", "y", "z"]  # ties keep the order
    with pytest.raises(WarmError, match="--top-m 5: must be between 1 and the number of members"):
        top_m_soup(["a", "b", "c", "d"], 5, accuracy_table([]))
    with pytest.raises(WarmError, match="a: member given twice"):
        greedy_soup(["a", "b", "a"], accuracy_table([]))


@pytest.fixture(scope="module")
def noisy_members(tiny_model_dir, tmp_path_factory) -> list[Path]:
    """Three members: the tiny model plus seeded noise of growing size, sharing one (declared) init."""
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("soup-members")
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    members = []
    for i, scale in enumerate((0.05, 0.3, 1.0)):
        dest = root / f"m{i:02d}"
        shutil.copytree(tiny_model_dir, dest)
        generator = torch.Generator().manual_seed(i)
        noisy = {k: v + scale * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
                 for k, v in base.items()}
        save_file(noisy, str(dest / "model.safetensors"), metadata={"format": "pt"})
        (dest / "warm_member.json").write_text(json.dumps({"init_fingerprint": "tiny"}))
        members.append(dest)
    return members


def test_greedy_soup_end_to_end_with_mergekit_config(noisy_members, tmp_path):
    val = write_pairs(tmp_path / "val.jsonl", n=24, seed=3)
    out, config = tmp_path / "soup", tmp_path / "soup.yml"
    result = CliRunner().invoke(app, [
        "merge", *map(str, noisy_members), "--out", str(out), "--greedy", "--val", str(val), "--val-max-length", "32",
        "--emit-mergekit-yaml", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    soup = read_json(out / "warm_merge.json")["soup"]
    assert soup["kind"] == "greedy" and soup["n_pairs"] == 24 and len(soup["decisions"]) == 3
    assert "best member alone" in result.output and "soup with it" in result.output
    selected = [d["member"] for d in soup["decisions"] if d["accepted"]]
    assert soup["selected"] == selected and read_json(out / "warm_merge.json")["members"] == [
        str(Path(m).resolve()) for m in selected]
    # The recorded accuracy of the best member is what the scorer and the shared metric give it.
    from warm.data.formats import load_preferences
    from warm.metrics import pairwise_correct
    from warm.score.scorer import RewardModelScorer

    scorer = RewardModelScorer(soup["decisions"][0]["member"], max_length=32, precision="auto")  # as `warm eval`
    chosen, rejected = scorer.score_data(load_preferences(str(val)))
    assert soup["decisions"][0]["candidate_accuracy"] == pytest.approx(pairwise_correct(chosen, rejected).mean())
    assert soup["ranking"][0]["accuracy"] >= soup["ranking"][-1]["accuracy"]
    parsed = yaml.safe_load(config.read_text())
    assert [m["model"] for m in parsed["models"]] == [str(Path(m).resolve()) for m in selected]
    assert not list(tmp_path.glob(".*"))  # candidate soups are cleaned up


def test_top_m_cli_and_refusals(noisy_members, tmp_path):
    val = write_pairs(tmp_path / "val.jsonl", n=8)
    members = list(map(str, noisy_members))
    runner = CliRunner()
    result = runner.invoke(app, ["merge", *members, "--out", str(tmp_path / "top"), "--top-m", "2", "--val", str(val),
                                 "--val-max-length", "32", "--quiet"])
    assert result.exit_code == 0, result.output
    info = read_json(tmp_path / "top" / "warm_merge.json")
    assert info["soup"]["kind"] == "top_m" and len(info["members"]) == 2 and info["weights"] == [0.5, 0.5]
    for args, message in [
        (["--top-m", "2"], "--top-m needs --val FILE"),
        (["--greedy", "--top-m", "2", "--val", str(val)], "choose one soup"),
        (["--greedy", "--val", str(val), "--weights", "1,2,3"], "averages its selection uniformly"),
        (["--val", str(val)], "--val is used by --top-m or --greedy only"),
    ]:
        result = runner.invoke(app, ["merge", *members, "--out", str(tmp_path / "no"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "no").exists()
