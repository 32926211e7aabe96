"""`warm winrate`: paired samples from two policies, judged; ties count half; bootstrap interval over prompts."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_tiny_policy_dir

from warm.apply.winrate.run import resolve_policy_dir, run_winrate, win_scores
from warm.cli import app
from warm.errors import WarmError
from warm.fileio import read_json

PROMPTS = [{"prompt_id": "cat", "prompt": "tell me about the cat"}, {"prompt_id": "w", "prompt": "why is water good"},
           {"prompt_id": 3, "prompt": [{"role": "user", "content": "write python code please"}]},
           {"prompt_id": "h", "prompt": "help"}, {"prompt_id": "f", "prompt": "what is fire"},
           {"prompt_id": "d", "prompt": "list the dog"}]
SETTINGS = {"samples": 2, "max_new_tokens": 6, "temperature": 1.0, "n_boot": 200, "progress": False}


def n_words(prompts, responses):
    """The constructed judge: longer answers win; equal lengths tie."""
    return [len(response.split()) for response in responses]


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("policies")
    yield (str(make_tiny_policy_dir(root / "a", seed=0)),
           str(make_tiny_policy_dir(root / "b", seed=1, eos_logit=1.5)))  # B stops earlier: shorter answers
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    return str(path)


def test_ties_count_half():
    a = np.array([[3.0, 1.0], [2.0, 2.0], [0.0, 0.0], [5.0, 1.0]])
    b = np.array([[1.0, 1.0], [2.0, 2.0], [1.0, 1.0], [4.0, 0.0]])
    np.testing.assert_array_equal(win_scores(a, b), [0.75, 0.5, 0.0, 1.0])
    with pytest.raises(WarmError, match="one shape"):
        win_scores(a, b[:2])


def test_win_rate_of_paired_samples(policies, prompts_file, tmp_path):
    a, b = policies
    result = run_winrate(a, b, prompts_file, n_words, out=str(tmp_path / "out"), **SETTINGS)
    assert result == read_json(tmp_path / "out" / "winrate.json")
    rows = {side: [json.loads(line) for line in (tmp_path / "out" / side / "samples.jsonl").read_text().splitlines()]
            for side in ("a", "b")}
    assert len(rows["a"]) == len(rows["b"]) == 12
    lengths = {side: np.array(n_words(None, [r["candidate"] for r in rows[side]])).reshape(6, 2) for side in rows}
    expected = ((lengths["a"] > lengths["b"]) + 0.5 * (lengths["a"] == lengths["b"])).mean(axis=1)
    assert [p["win"] for p in result["per_prompt"]] == expected.tolist()
    assert result["win_rate"] == pytest.approx(expected.mean())
    assert result["win_rate"] > 0.5  # B was built to stop earlier
    lo, hi = result["ci95"]
    assert lo <= result["win_rate"] <= hi
    assert result["wins"] + result["ties"] + result["losses"] == 12 and result["judge"] == "n_words"
    assert result["judge_mean_a"] == pytest.approx(lengths["a"].mean())


def test_a_policy_against_itself_ties_everywhere(policies, prompts_file):
    a, _ = policies
    result = run_winrate(a, a, prompts_file, n_words, **SETTINGS)  # same seeds: the same samples
    assert result["win_rate"] == 0.5 and result["ci95"] == [0.5, 0.5] and result["ties"] == 12
    assert result["samples_dirs"] is None


def test_rl_run_directory_stands_for_its_final_policy(policies, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "rl_config.json").write_text("{}")
    with pytest.raises(WarmError, match="without final/"):
        resolve_policy_dir(str(run))
    shutil.copytree(policies[0], run / "final")
    assert resolve_policy_dir(str(run)) == str(run / "final")
    assert resolve_policy_dir(policies[0]) == policies[0]


def test_cli_with_a_reward_model_judge(policies, prompts_file, tiny_model_dir, tmp_path):
    a, b = policies
    args = ["winrate", a, b, "--prompts", prompts_file, "--judge", str(tiny_model_dir), "--samples", "1",
            "--max-new-tokens", "4", "--limit", "4", "--n-boot", "100", "--precision", "fp32",
            "--out", str(tmp_path / "out"), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "win rate of A over B:" in result.output and "on 4 prompts" in result.output
    saved = read_json(tmp_path / "out" / "winrate.json")
    assert saved["judge"] == str(tiny_model_dir) and saved["n_prompts"] == 4
    changed = CliRunner().invoke(app, args[:-1] + ["--temperature", "0.5", "--quiet"])
    assert changed.exit_code == 2 and "pass --force" in changed.output
