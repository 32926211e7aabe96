"""`warm rl-report` on constructed `warm rl` run directories: rescoring saved responses, peaks, errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from warm.apply.rl.report import judged_steps, rl_report
from warm.cli import app
from warm.errors import WarmError


def _run(tmp_path, name, responses_by_step, live_control=True):
    """A run directory as `warm rl` leaves it: rl_config.json and eval_samples.jsonl over two held-out prompts."""
    run = tmp_path / name
    run.mkdir()
    prompts = tmp_path / "eval_prompts.jsonl"
    prompts.write_text('{"prompt_id": 7, "prompt": "tell me about fire"}\n{"prompt_id": 9, "prompt": "why"}\n')
    (run / "rl_config.json").write_text(json.dumps({"config": {"eval_prompts": str(prompts), "prompts": "unused"}}))
    rows = []
    for step, responses in responses_by_step.items():
        for k, (pid, text) in enumerate(zip((7, 9), responses)):
            rows.append({"step": step, "prompt_id": pid, "response": text, "n_tokens": len(text.split()),
                         "finished": True, "proxy_reward": float(step + k), "kl": 0.1 * step,
                         "control_reward": float(-step) if live_control else None})
    (run / "eval_samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


class WordCount:
    """A judge: the number of words of the response (prompts checked to arrive as text)."""

    def score(self, prompts, responses):
        assert prompts == ["tell me about fire", "why"] * (len(responses) // 2)
        return np.array([len(r.split()) for r in responses], dtype=np.float64)


def test_rescoring_gives_exact_means_and_errors(tmp_path):
    run = _run(tmp_path, "a", {0: ["fire is hot", "because"], 10: ["fire is hot and bright", "because it is"]})
    steps = judged_steps(run, WordCount())
    assert [s["step"] for s in steps] == [0, 10]
    assert steps[0]["control"] == 2.0 and steps[0]["control_sem"] == pytest.approx(1.0)  # 3 and 1 words
    assert steps[1]["control"] == 4.0 and steps[1]["proxy"] == 10.5 and steps[1]["kl"] == pytest.approx(1.0)
    live = judged_steps(run)  # without a judge: the control recorded during the run
    assert [s["control"] for s in live] == [0.0, -10.0]


def test_report_peak_files_and_cli(tmp_path, tiny_model_dir):
    a = _run(tmp_path, "a", {0: ["a", "b"], 5: ["a b c", "d e f"], 10: ["a", "b c"]})
    b = _run(tmp_path, "b", {0: ["a", "b"], 5: ["a", "b"]})
    payload = rl_report({"single": str(a), "warm": str(b)}, tmp_path / "out", None)
    assert payload["runs"]["single"]["peak"] == {"step": 0, "control": 0.0, "kl": 0.0}
    assert payload["runs"]["single"]["last"]["step"] == 10
    assert (tmp_path / "out" / "rl_report.png").stat().st_size > 0
    assert "| single | 5 |" in (tmp_path / "out" / "report.md").read_text()
    # a real reward model as the control, through the CLI
    result = CliRunner().invoke(app, ["rl-report", f"single={a}", f"warm={b}", "--control", str(tiny_model_dir),
                                      "--max-length", "32", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "cli" / "rl_report.json").read_text())
    assert saved["control"] == str(tiny_model_dir) and len(saved["runs"]["single"]["steps"]) == 3


def test_errors(tmp_path):
    run = _run(tmp_path, "a", {0: ["a", "b"]}, live_control=False)
    with pytest.raises(WarmError, match="evaluated without a control reward; pass --control"):
        judged_steps(run)
    with pytest.raises(WarmError, match="not a warm rl run"):
        judged_steps(tmp_path)
    result = CliRunner().invoke(app, ["rl-report", str(run), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "expected NAME=VALUE" in result.output
    result = CliRunner().invoke(app, ["rl-report", f"x={run}", f"x={run}", "--out", str(tmp_path / "o")])
    assert "given twice" in result.output and not (tmp_path / "o").exists()


def test_read_rows_skips_only_a_truncated_last_line(tmp_path):
    from warm.apply.rl.evaluation import read_rows
    from warm.errors import WarmError

    path = tmp_path / "eval.jsonl"
    path.write_text('{"step": 0}\n{"step": 2}\n{"step": 4, "pro')  # a run killed mid-write
    assert read_rows(path) == [{"step": 0}, {"step": 2}]
    path.write_text('{"step": 0}\n{"step": 2, oops}\n{"step": 4}\n')
    with pytest.raises(WarmError, match=r"eval.jsonl: line 2: invalid JSON"):
        read_rows(path)
    path.write_text('{"step": 0}\n{"step": 2\n')  # a complete (newline-terminated) line that does not parse
    with pytest.raises(WarmError, match="line 2"):
        read_rows(path)
