"""`warm rl-report` with the reward-hacking monitor's curves: a monitored run beside one that was not."""

import json

from warm.apply.rl.report import rl_report


def _run(tmp_path, name, monitor_rows=None):
    """A `warm rl` run directory: rl_config.json, eval_samples.jsonl at steps 0 and 4, and monitor.jsonl if given."""
    run = tmp_path / name
    run.mkdir()
    prompts = tmp_path / "eval_prompts.jsonl"
    prompts.write_text('{"prompt_id": 1, "prompt": "why"}\n')
    (run / "rl_config.json").write_text(json.dumps({"config": {"eval_prompts": str(prompts), "prompts": "unused"}}))
    samples = [{"step": s, "prompt_id": 1, "response": "x", "n_tokens": 1, "finished": True, "proxy_reward": s,
                "kl": 0.5 * s, "control_reward": -s} for s in (0, 4)]
    (run / "eval_samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in samples))
    if monitor_rows is not None:
        (run / "monitor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in monitor_rows))
    return run


def probe(step, std, alarm=None):
    row = {"step": step, "proxy": 0.5 * step, "control": 1.0 - 0.25 * step, "member_std": std,
           "warm_minus_mean": -0.01, "share_beyond": std / 4, "threshold": 0.3, "kl": 0.1 * step,
           "response_tokens": 8.0, "items": {"proxy": [0.5 * step], "control": None, "member_std": [std]}}
    return {**row, "alarm": alarm} if alarm else row


def test_monitor_curves_table_and_alarm(tmp_path):
    alarm = {"rule": "disagreement", "step": 4, "last_good_step": 0, "reason": "reward hacking: drift",
             "last_good_checkpoint": "runs/rl/warm/checkpoints/checkpoint-0", "evidence": {}}
    watched = _run(tmp_path, "watched", [probe(0, 0.1), probe(2, 0.6), probe(4, 1.2, alarm)])
    plain = _run(tmp_path, "plain")
    payload = rl_report({"watched": str(watched), "plain": str(plain)}, tmp_path / "out")
    monitor = payload["runs"]["watched"]["monitor"]
    assert [row["member_std"] for row in monitor["steps"]] == [0.1, 0.6, 1.2] and monitor["alarm"] == alarm
    assert "items" not in monitor["steps"][0]  # the per-prompt scores stay in monitor.jsonl
    assert payload["runs"]["plain"]["monitor"] is None
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| watched | 2 | +1.000 | +0.500 | 0.600 | -0.010 | 15% | 0.20 |" in report
    assert ("| watched | step 4 (disagreement): reward hacking: drift | 0 | runs/rl/warm/checkpoints/checkpoint-0 |"
            in report)
    assert "| plain |" not in report.split("Reward-hacking monitor")[1]
    assert json.loads((tmp_path / "out" / "rl_report.json").read_text())["runs"]["watched"]["monitor"] == monitor
    from PIL import Image

    assert Image.open(tmp_path / "out" / "rl_report.png").size[0] > 20 * 100  # four panels, not three


def test_unmonitored_runs_report_as_before(tmp_path):
    rl_report({"plain": str(_run(tmp_path, "plain"))}, tmp_path / "out")
    assert "monitor" not in (tmp_path / "out" / "report.md").read_text()
