"""The reward-hacking monitor's curves in `warm rl-report`: per run with a RUN/monitor.jsonl (`warm rl
--monitor-every`), the probes' proxy, control, members' disagreement and KL, the alarm and the last good step.

Drawn as a fourth panel (the members' std against step; the alarm as a dashed line, the last good step as a dotted
one, also on the proxy and control panels) and a table in report.md.
"""

from __future__ import annotations

from pathlib import Path

from warm.rundir import RLRun

_KEYS = ("step", "proxy", "control", "member_std", "warm_minus_mean", "share_beyond", "threshold", "kl",
         "response_tokens")


def monitor_curves(run_dir: str | Path) -> dict | None:
    """{"steps": [one row per probe, without its per-prompt items], "alarm": the alarm or None}; None without a
    monitor file."""
    from warm.apply.rl.evaluation import read_rows

    rows = read_rows(RLRun(Path(run_dir)).monitor_file)
    if not rows:
        return None
    alarm = next((row["alarm"] for row in rows if row.get("alarm")), None)
    return {"steps": [{key: row.get(key) for key in _KEYS} for row in rows], "alarm": alarm}


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def monitor_markdown(payload: dict) -> str:
    """The monitor's table and each run's verdict ("" when no run was monitored)."""
    runs = {name: run["monitor"] for name, run in payload["runs"].items() if run.get("monitor")}
    if not runs:
        return ""
    lines = ["", "Reward-hacking monitor (`warm rl --monitor-every`): the probe's means; members' std and the share of "
             "responses beyond its calibrated threshold.\n",
             "| run | step | proxy | control | members' std | WARM − members' mean | share beyond | KL |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, monitor in runs.items():
        for row in monitor["steps"]:
            lines.append(f"| {name} | {row['step']} | {_fmt(row['proxy'], '+.3f')} | {_fmt(row['control'], '+.3f')} | "
                         f"{_fmt(row['member_std'], '.3f')} | {_fmt(row['warm_minus_mean'], '+.3f')} | "
                         f"{_fmt(row['share_beyond'], '.0%')} | {_fmt(row['kl'], '.2f')} |")
    lines += ["", "| run | alarm | last good step | last good checkpoint |", "| --- | --- | ---: | --- |"]
    for name, monitor in runs.items():
        alarm = monitor["alarm"]
        if alarm is None:
            lines.append(f"| {name} | none | – | – |")
        else:
            lines.append(f"| {name} | step {alarm['step']} ({alarm['rule']}): {alarm['reason']} | "
                         f"{alarm['last_good_step']} | {alarm.get('last_good_checkpoint') or '–'} |")
    return "\n".join(lines) + "\n"


def plot_monitor(axes, payload: dict, colors: dict) -> None:
    """The members' std against step on `axes[3]`; alarm and last good step on every step axis (0, 1, 3)."""
    ax = axes[3]
    for name, run in payload["runs"].items():
        monitor = run.get("monitor")
        if not monitor:
            continue
        rows = [row for row in monitor["steps"] if row["member_std"] is not None]
        if rows:
            ax.plot([row["step"] for row in rows], [row["member_std"] for row in rows], marker="o",
                    color=colors[name], label=name)
        alarm = monitor["alarm"]
        if alarm is not None:
            for target in (axes[0], axes[1], ax):
                target.axvline(alarm["step"], color=colors[name], linestyle="--", alpha=0.7)
                target.axvline(alarm["last_good_step"], color=colors[name], linestyle=":", alpha=0.7)
    ax.set_xlabel("step")
    ax.set_ylabel("members' std on the monitor's probe")
    ax.set_title("monitor (-- alarm, : last good step)", fontsize=9)
    ax.grid(alpha=0.3)
