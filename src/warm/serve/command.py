"""`warm serve SPEC`: parse the options, build the scorer and the app, run uvicorn. Nothing else lives here.

Registered in warm.cli with `app.add_command(serve_command)`. FastAPI and uvicorn are imported only when the
command runs, so the rest of the CLI does not pay for them.
"""

from __future__ import annotations

import ipaddress

import click

from warm.cli_util import user_errors
from warm.config import click_options, from_dict
from warm.serve.settings import ServeSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click_options(ServeSettings)
@user_errors
def serve_command(**options) -> None:
    """Serve a reward model, a WARM merge or an ensemble (any scorer SPEC) over HTTP.

    OpenRLHF (0.11): POST /get_reward (train with --reward.remote_url http://HOST:PORT/get_reward; versions before
    0.10.2 named it --remote_rm_url), with --policy-tokenizer POLICY_DIR. Also POST /v1/score, GET /health and
    GET /v1/info. SPEC is DIR, DIR1,DIR2 (mean ensemble), min:DIR1,DIR2 or mean_minus_std=0.5:DIR1,DIR2.
    """
    settings = from_dict(ServeSettings, options, "warm serve")
    if not _is_loopback(settings.host) and not settings.auth:
        click.echo(f"warning: serving on {settings.host} without an API key: anyone who can reach it can use it "
                   "(set WARM_API_KEY)", err=True)
    import uvicorn

    from warm.serve.app import create_app
    from warm.serve.scoring import load_policy_format, load_scorer

    policy = load_policy_format(settings.policy_tokenizer) if settings.policy_tokenizer else None
    scorer = load_scorer(settings.spec, max_batch=settings.max_batch, max_length=settings.max_length,
                         precision=settings.precision, device=settings.device, members=settings.members)
    app = create_app(scorer, settings, policy)
    click.echo(f"serving {scorer.name} on http://{settings.host}:{settings.port} (POST /get_reward, /v1/score; "
               "GET /health, /v1/info)", err=True)
    # uvicorn's graceful shutdown stops accepting, waits up to --drain-timeout for in-flight requests, then runs
    # the app's lifespan exit, where the micro-batcher finishes its queue.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=settings.drain_timeout)


if __name__ == "__main__":  # `python -m warm.serve.command SPEC ...`, used by benchmarks/serve_load.py
    serve_command(prog_name="warm serve")
