"""The `warm` command line, and the table of contents of the system: every command, in the order of the pipeline,
and the module that holds it. Each command module declares its options as one frozen dataclass (warm.config's
`click_options`: help written once) and hands the parsed config to its stage:

    init, train        warm.train.command       shared init (warm.train.init), M members (warm.train.launcher)
    sft                warm.train.sft_command   continued LM training: the Baklava variant's inits (warm.train.sft)
    merge              warm.merge.command       the weight average, soups (warm.merge.merge, .lora, .soups)
    eval, lmc          warm.evaluate.command    accuracies with intervals (warm.evaluate.runner, .interpolation)
    check              warm.check.command       the same reward in every tool that loads the model (warm.check)
    serve              warm.serve.command       the HTTP reward server (warm.serve.app)
    generate           warm.apply.sampling      K samples per prompt from a policy
    bon                warm.apply.best_of_n     best-of-N judged by a gold reward
    rl, rl-report      warm.apply.rl            RL fine-tuning against a reward, and the runs' comparison
    winrate            warm.apply.winrate       two policies judged head to head
    experiment         warm.experiments         the paper's findings, one config per figure
    demo               warm.demo                the whole pipeline on the bundled data

Modules are imported on first use (LazyGroup), so `warm merge` does not pay for transformers, peft or FastAPI.
Errors meant for users (`WarmError`) print as one line, `error: ...`, and exit with status 2.
"""

from __future__ import annotations

import importlib

import click

from warm import __version__
from warm.cli_util import terminate_like_interrupt

COMMANDS = {
    "init": "warm.train.command:init_command",
    "train": "warm.train.command:train_command",
    "sft": "warm.train.sft_command:sft_command",
    "merge": "warm.merge.command:merge_command",
    "eval": "warm.evaluate.command:eval_command",
    "lmc": "warm.evaluate.command:lmc_command",
    "check": "warm.check.command:check_command",
    "serve": "warm.serve.command:serve_command",
    "generate": "warm.apply.sampling.command:generate_command",
    "bon": "warm.apply.best_of_n.command:bon_command",
    "rl": "warm.apply.rl.command:rl_command",
    "rl-report": "warm.apply.rl.report_command:rl_report_command",
    "winrate": "warm.apply.winrate.command:winrate_command",
    "experiment": "warm.experiments.command:experiment_command",
    "demo": "warm.demo:demo_command",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (click's pattern for lazily loaded subcommands)."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="warm")
def app() -> None:
    """warm: Weight Averaged Reward Models (Ramé et al., 2024, arXiv 2401.12187).

    init -> train (M members) -> merge (WARM) -> eval against members and the ensemble (ENS).
    """
    terminate_like_interrupt()


def main() -> None:  # pragma: no cover - console entry
    app()
