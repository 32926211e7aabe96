"""`warm lmc`: linear mode connectivity curves of two reward models (WARM Figs. 3-5), as a click command.

Registered in warm.cli with `app.add_command(lmc_command)`; the stage modules are imported when the command runs.
"""

from __future__ import annotations

import click

from warm.cli_util import evaluation_options, parse_named, parse_number_list, user_errors


def parse_lambdas(text: str) -> list[float]:
    """"0,0.25,0.5" -> [0.0, 0.25, 0.5]; the range is checked by warm.evaluate.interpolation.check_lambdas."""
    return parse_number_list(text, "--lambdas", float, "numbers in [0, 1]")


@click.command("lmc")
@click.argument("model_a")
@click.argument("model_b")
@click.option("--data", "splits", multiple=True, required=True, help="NAME=FILE of a preference split. Repeatable.")
@click.option("--lambdas", default=None,
              help="Comma-separated interpolation weights in [0, 1]; 0 is A and 1 is B, both always included. "
                   "Default: 0, 0.1, ..., 1.")
@click.option("--out", required=True, help="Directory for lmc.json and lmc.png.")
@evaluation_options
@user_errors
def lmc_command(model_a, model_b, splits, lambdas, out, max_length, batch_size, limit, n_boot, seed, precision) -> None:
    """Accuracy along the weight interpolation (1-λ)·A + λ·B (WA), the prediction ensemble (ENS) and the chord
    between A and B (Diag): whether A and B are linearly mode connected, i.e. worth averaging."""
    from warm.evaluate.interpolation import DEFAULT_LAMBDAS, run_lmc

    chosen = DEFAULT_LAMBDAS if lambdas is None else parse_lambdas(lambdas)
    run_lmc(model_a, model_b, parse_named(splits, "--data"), out, chosen, max_length=max_length,
            batch_size=batch_size, limit=limit, n_boot=n_boot, seed=seed, precision=precision)
    click.echo(f"wrote {out}/lmc.json and {out}/lmc.png")
