"""`warm rl` as a click command (registered lazily in warm.cli): options come from `RLConfig`'s fields."""

from __future__ import annotations

import click

from warm.apply.rl.config import RLConfig
from warm.cli_util import user_errors
from warm.config import click_options, from_dict


@click.command("rl")
@click_options(RLConfig)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (--steps may grow).")
@click.option("--force", is_flag=True, help="Delete the run in --out and start again.")
@click.option("--quiet", is_flag=True, help="No progress line.")
@user_errors
def rl_command(resume, force, quiet, **options) -> None:
    """RL fine-tuning of a policy against a reward model (TRL's RLOO: REINFORCE with a leave-one-out baseline, the
    KL to the initial policy in the reward), evaluated every --eval-every steps on held-out prompts: proxy reward,
    control reward, KL and length to OUT/eval.jsonl; the trained policy to OUT/final."""
    from warm.apply.rl.run import run_rl

    metrics = run_rl(from_dict(RLConfig, options, "warm rl"), resume=resume, force=force, progress=not quiet)
    last = metrics.get("last_eval") or {}
    summary = f"step {metrics['steps']}: proxy {last.get('proxy_reward', float('nan')):.4g}"
    if last.get("control_reward") is not None:
        summary += f", control {last['control_reward']:.4g}"
    summary += f", KL {last.get('kl', float('nan')):.4g}, {last.get('response_tokens', float('nan')):.3g} tokens"
    click.echo(f"{summary}; policy in {metrics['final']}")
    alarm = (metrics.get("monitor") or {}).get("alarm")
    if alarm:  # the monitor's verdict, with where to go back to
        click.echo(f"monitor at step {alarm['step']}: {alarm['reason']}; last good checkpoint: "
                   f"{alarm['last_good_checkpoint'] or 'none kept (the initial policy, or --keep-checkpoints 0)'}")
