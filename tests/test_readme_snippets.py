"""Every snippet of the README's "Using a warm reward model elsewhere" (and the TRL one), run as written on tiny
models trained by warm: each gives warm's reward. Snippets are the code blocks after `<!-- tested: NAME -->`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from warm.cli import app
from warm.score.scorer import RewardModelScorer

README = Path(__file__).resolve().parents[1] / "README.md"
QUESTION, ANSWER = "How do I boil an egg?", "Put it in boiling water for 8 minutes."


def snippets() -> dict[str, str]:
    text = README.read_text()
    found = dict(re.findall(r"<!-- tested: (\w+) -->\n```\w+\n(.*?)```", text, flags=re.S))
    assert set(found) == {"check", "transformers", "pipeline", "openrlhf", "trl", "members", "monitor"}
    return found


def warm_reward(model: Path, prompt: str = QUESTION, answer: str = ANSWER) -> float:
    return float(RewardModelScorer(str(model)).score_texts([prompt], [answer])[0])


@pytest.mark.parametrize("name", ["transformers", "pipeline"])
def test_python_snippets_give_warms_reward(trained_merges, name):
    model, _ = trained_merges["encoder"]
    namespace: dict = {}
    exec(snippets()[name].replace("runs/demo/warm", str(model)), namespace)  # noqa: S102
    assert namespace["reward"] == pytest.approx(warm_reward(model), abs=1e-6)


def test_check_snippet(trained_merges, tmp_path):
    model, _ = trained_merges["encoder"]
    line = snippets()["check"].strip().replace("runs/demo/warm", str(model))
    args = shlex.split(line.replace("runs/demo/check.json", str(tmp_path / "check.json")))
    assert args[:2] == ["warm", "check"]
    result = CliRunner().invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    assert "| compatible |" in result.output and (tmp_path / "check.json").is_file()


def test_openrlhf_snippet_serves_the_plain_pairs_reward(trained_merges, monkeypatch):
    import uvicorn

    model, _ = trained_merges["decoder"]
    policy = trained_merges["policy"]
    command = snippets()["openrlhf"].splitlines()[0].replace("runs/demo/warm", str(model))
    args = shlex.split(command.replace("path/to/policy", str(policy)))
    captured = {}
    monkeypatch.setattr(uvicorn, "run", lambda served, **kw: captured.update(app=served, **kw))
    result = CliRunner().invoke(app, args[1:])
    assert result.exit_code == 0, result.output
    assert captured["port"] == 5000 and "--reward.remote_url http://127.0.0.1:5000/get_reward" in snippets()["openrlhf"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "tell me about the cat"}], tokenize=False,
                                           add_generation_prompt=True)
    query = prompt + "the cat is good" + tokenizer.eos_token  # as OpenRLHF 0.11 decodes a sample
    with TestClient(captured["app"]) as client:
        reply = client.post("/get_reward", json={"query": [query], "prompts": [prompt], "labels": [""]}).json()
    assert reply["extra_logs"]["policy_template"] == [1.0]
    assert reply["rewards"][0] == pytest.approx(warm_reward(model, "tell me about the cat", "the cat is good"),
                                                abs=1e-6)


def shorten_grpo(monkeypatch, tmp_path: Path, steps: int) -> None:
    """The snippets' `trl.GRPOConfig(...)`, cut to `steps` short CPU steps for the tests."""
    import trl

    real_config = trl.GRPOConfig

    def small(**kwargs):
        kwargs["output_dir"] = str(tmp_path / "grpo")
        return real_config(**kwargs, max_steps=steps, per_device_train_batch_size=4, num_generations=2,
                           max_completion_length=4, use_cpu=True, report_to=[], bf16=False, save_strategy="no",
                           disable_tqdm=True, logging_steps=1)

    monkeypatch.setattr(trl, "GRPOConfig", small)


def test_trl_snippet_trains_against_warms_reward(trained_merges, tmp_path, monkeypatch, one_thread):
    model, _ = trained_merges["encoder"]
    shorten_grpo(monkeypatch, tmp_path, steps=1)
    code = snippets()["trl"].replace("runs/demo/warm", str(model)).replace("path/to/policy",
                                                                           str(trained_merges["policy"]))
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102
    logged = [row for row in namespace["trainer"].state.log_history if "rewards/warm/mean" in row]
    assert logged and np.isfinite(logged[0]["rewards/warm/mean"])


def test_members_snippet_serves_the_members_disagreement(trained_merges, monkeypatch):
    import json

    import uvicorn

    model, _ = trained_merges["encoder"]
    serve, curl = snippets()["members"].strip().splitlines()
    captured = {}
    monkeypatch.setattr(uvicorn, "run", lambda served, **kw: captured.update(app=served, **kw))
    result = CliRunner().invoke(app, shlex.split(serve.replace("runs/demo/warm", str(model)))[1:])
    assert result.exit_code == 0, result.output
    request = json.loads(shlex.split(curl)[-1])
    assert curl.startswith(f"curl -s 127.0.0.1:{captured['port']}/v1/score")
    with TestClient(captured["app"]) as client:
        reply = client.post("/v1/score", json=request).json()
    assert reply["rewards"][0] == pytest.approx(warm_reward(model, "2+2?", "4"), abs=1e-6)
    members = np.array(reply["members"])
    assert members.shape == (2, 1) and reply["std"][0] == pytest.approx(members.std(), rel=1e-5)
    assert reply["warm_minus_mean"][0] == pytest.approx(reply["rewards"][0] - members.mean(), rel=1e-4, abs=1e-6)


def test_monitor_snippet_probes_and_logs_through_trl(trained_merges, tmp_path, monkeypatch, one_thread):
    from warm.data.formats import load_preferences
    from warm.score.uncertainty import calibrate_disagreement, members_scorer

    model, pairs = trained_merges["encoder"]
    shorten_grpo(monkeypatch, tmp_path, steps=2)
    code = (snippets()["monitor"].replace("runs/demo/warm", str(model)).replace("every=10", "every=1")
            .replace("runs/demo/data/eval_id.jsonl.gz", str(pairs))
            .replace("path/to/policy", str(trained_merges["policy"])))
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102
    monitor = namespace["monitor"]
    assert [row["step"] for row in monitor.history] == [0, 1, 2]
    assert monitor.history[0]["kl"] == 0.0 and all(row["member_std"] > 0 for row in monitor.history)
    expected = calibrate_disagreement(members_scorer(str(model)), load_preferences(str(pairs)), 0.95)
    assert monitor.threshold == pytest.approx(expected, rel=1e-5)
    history = namespace["trainer"].state.log_history
    assert [row["step"] for row in history if "monitor/member_std" in row] == [0, 1, 2]  # beside TRL's metrics
    assert [row["step"] for row in history if "rewards/warm/mean" in row] == [1, 2]
