"""`warm rl-report`: compare `warm rl` runs (one per proxy) by a control reward, per step and per KL.

Reward hacking shows as the control reward of a run's held-out responses rising, peaking and falling while its
proxy reward keeps rising (Ramé et al. 2024, arXiv 2401.12187, Figs. 1b, 8, 9). Every `warm rl` evaluation keeps
its responses (RUN/eval_samples.jsonl), so a control given here rescores them: the judge may be chosen, or trained,
after the runs, and no policy is sampled again. Without `--control`, the control scores the runs recorded live
are used. Per run and evaluation step: proxy reward, control reward (mean ± standard error over the held-out
prompts), KL to the initial policy and response length; the control's peak; a figure (proxy and control against
step, control against KL) and a markdown table. OUT/rl_report.json, rl_report.png, report.md. Runs made with the
reward-hacking monitor add its curves and alarm (warm.apply.rl.monitor_report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from warm.apply.rl.monitor_report import monitor_curves, monitor_markdown, plot_monitor
from warm.errors import WarmError
from warm.metrics import standard_error
from warm.fileio import read_json, write_json, write_text
from warm.rundir import RLRun

REPORT_FILE = "rl_report.json"
FIGURE_FILE = "rl_report.png"
MARKDOWN_FILE = "report.md"


def judged_steps(run_dir: str | Path, judge: Any = None) -> list[dict]:
    """Per evaluation step of one run: proxy, control (from `judge`, a WarmRewardFunction or any
    `f.score(prompts, responses)`; else the live control), KL and length, as means ± standard errors."""
    from warm.apply.sampling.prompts import read_prompts
    from warm.apply.rl.evaluation import read_rows

    run = Path(run_dir)
    layout = RLRun(Path(run))
    if not layout.config_file.is_file() or not layout.eval_samples_file.is_file():
        raise WarmError(f"{run}: not a warm rl run with evaluations ({layout.config_file.name}, "
                        f"{layout.eval_samples_file.name} missing)")
    config = read_json(layout.config_file)["config"]
    prompt_file = config["eval_prompts"] or config["prompts"]
    prompts = {item["prompt_id"]: item["prompt"] for item in read_prompts(prompt_file)}
    samples = read_rows(layout.eval_samples_file)
    missing = [row["prompt_id"] for row in samples if row["prompt_id"] not in prompts]
    if missing:
        raise WarmError(f"{prompt_file}: no prompt with prompt_id {missing[0]!r} (evaluated in {run})")
    if judge is not None:  # one pass over every saved response: the judge batches across steps
        control = np.asarray(judge.score([prompts[r["prompt_id"]] for r in samples], [r["response"] for r in samples]),
                             dtype=np.float64)
    elif all(row.get("control_reward") is not None for row in samples):
        control = np.array([row["control_reward"] for row in samples], dtype=np.float64)
    else:
        raise WarmError(f"{run}: evaluated without a control reward; pass --control")
    step_of = np.array([row["step"] for row in samples])
    proxy, kl, tokens = (np.array([row[k] for row in samples], dtype=np.float64)
                         for k in ("proxy_reward", "kl", "n_tokens"))
    steps = []
    for step in sorted(set(step_of.tolist())):
        at = step_of == step
        steps.append({"step": step, "n_prompts": int(at.sum()), "proxy": float(proxy[at].mean()),
                      "proxy_sem": standard_error(proxy[at]), "control": float(control[at].mean()),
                      "control_sem": standard_error(control[at]), "kl": float(kl[at].mean()),
                      "kl_sem": standard_error(kl[at]), "response_tokens": float(tokens[at].mean())})
    return steps


def rl_report(runs: dict[str, str], out: str | Path, control: str | None = None, *, max_length: int | None = None,
              batch_size: int = 32, precision: str = "auto") -> dict:
    """Judge every run, write OUT/rl_report.json, the figure and report.md; return the JSON payload."""
    if not runs:
        raise WarmError("no runs to report (give NAME=RUN_DIR at least once)")
    judge = None
    if control is not None:
        from warm.integrations.reward_function import WarmRewardFunction
        from warm.models.runtime import default_device, resolve_precision

        judge = WarmRewardFunction(control, max_length=max_length, batch_size=batch_size,
                                   precision=resolve_precision(precision, default_device()))
    per_run = {}
    for name, run_dir in runs.items():
        steps = judged_steps(run_dir, judge)
        peak = max(steps, key=lambda row: row["control"])
        per_run[name] = {"run": str(run_dir), "steps": steps,
                         "peak": {"step": peak["step"], "control": peak["control"], "kl": peak["kl"]},
                         "last": steps[-1], "monitor": monitor_curves(run_dir)}
    payload = {"control": control or "recorded during the runs", "runs": per_run}
    out = Path(out)
    write_json(out / REPORT_FILE, payload)
    plot_report(payload, out / FIGURE_FILE)
    write_text(out / MARKDOWN_FILE, markdown_report(payload))
    return payload


def markdown_report(payload: dict) -> str:
    lines = [f"Control: {payload['control']}. Means over the held-out prompts ± standard error.\n",
             "| run | step | proxy reward | control reward | KL (nats) | response tokens |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, run in payload["runs"].items():
        for row in run["steps"]:
            lines.append(f"| {name} | {row['step']} | {row['proxy']:+.3f} ± {row['proxy_sem']:.3f} | "
                         f"{row['control']:+.3f} ± {row['control_sem']:.3f} | {row['kl']:.2f} ± {row['kl_sem']:.2f} | "
                         f"{row['response_tokens']:.1f} |")
    lines += ["", "| run | peak control (step, KL) | last step: control, KL |", "| --- | --- | --- |"]
    for name, run in payload["runs"].items():
        peak, last = run["peak"], run["last"]
        lines.append(f"| {name} | {peak['control']:+.3f} (step {peak['step']}, KL {peak['kl']:.2f}) | "
                     f"{last['control']:+.3f} at step {last['step']}, KL {last['kl']:.2f} |")
    return "\n".join(lines) + "\n" + monitor_markdown(payload)


def plot_report(payload: dict, path: Path) -> Path:
    """Proxy and control against step, control against KL. A Figure of its own (no pyplot state), as in
    warm.report.figures."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from warm.report.figures import save_figure

    monitored = any(run.get("monitor") for run in payload["runs"].values())
    fig = Figure(figsize=(20 if monitored else 15, 4.2), layout="tight")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 4 if monitored else 3)
    colors = {}
    for name, run in payload["runs"].items():
        steps = run["steps"]
        x = [row["step"] for row in steps]
        for ax, key in ((axes[0], "proxy"), (axes[1], "control")):
            y = np.array([row[key] for row in steps])
            err = np.array([row[f"{key}_sem"] for row in steps])
            (line,) = ax.plot(x, y, marker="o", label=name)
            ax.fill_between(x, y - err, y + err, color=line.get_color(), alpha=0.15)
            colors[name] = line.get_color()
        # the KL need not grow monotonically between evaluations: points with error bars, joined in step order
        axes[2].errorbar([row["kl"] for row in steps], [row["control"] for row in steps],
                         yerr=[row["control_sem"] for row in steps], marker="o", capsize=3, alpha=0.85,
                         color=line.get_color())
    for ax, (xlabel, ylabel) in zip(axes, (("step", "proxy reward (its own scale)"), ("step", "control reward"),
                                           ("KL to the initial policy (nats)", "control reward"))):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend()
    if monitored:
        plot_monitor(axes, payload, colors)
    save_figure(fig, path, dpi=120)
    return path
