"""`warm serve SPEC`: parse the options, build the scorer and the app, run uvicorn. Nothing else lives here.

Registered in warm.cli with `app.add_command(serve_command)`. FastAPI and uvicorn are imported only when the
command runs, so the rest of the CLI does not pay for them.
"""

from __future__ import annotations

import ipaddress

import click

from warm.cli_util import user_errors
from warm.models.runtime import PRECISIONS
from warm.serve.settings import DEFAULT_MAX_BODY_BYTES, ServeSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.argument("spec")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Loopback by default; binding another address without --api-key warns.")
@click.option("--port", default=5000, show_default=True, help="TCP port (OpenRLHF's examples use 5000).")
@click.option("--max-batch", default=64, show_default=True,
              help="Most items per scorer call; concurrent requests are gathered up to this (micro-batching).")
@click.option("--max-wait-ms", default=5.0, show_default=True,
              help="How long the oldest queued item waits for others to join its micro-batch.")
@click.option("--max-length", default=None, type=int,
              help="Token budget per (prompt, response). Default: each model's own, from its input contract "
                   "(warm_contract.json).")
@click.option("--policy-tokenizer", default=None,
              help="The RL policy's model or tokenizer directory (or packaged:smollm2-135m-instruct): /get_reward "
                   "queries rendered by its chat template (OpenRLHF sends them so) are read back into the plain "
                   "(prompt, response) the reward model was trained on.")
@click.option("--max-items", default=1024, show_default=True, help="Most items per request (413 above).")
@click.option("--max-chars", default=100_000, show_default=True, help="Most characters per item (413 above).")
@click.option("--max-body-bytes", default=DEFAULT_MAX_BODY_BYTES, show_default=True,
              help="Largest request body in bytes (413 above).")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(PRECISIONS),
              help="Scoring precision. fp32: an item's reward does not depend on what it is micro-batched with "
                   "(to ~1e-7). bf16 (or auto, bf16 where supported): about twice the CPU throughput, but a reward "
                   "moves with its batch-mates by up to ~0.3% of the rewards' spread (docs/results/compatibility.md).")
@click.option("--device", default=None, help="Torch device (default: cuda if available, else cpu).")
@click.option("--api-key", envvar="WARM_API_KEY", show_envvar=True, default=None,
              help="Require this key (Authorization: Bearer KEY or X-API-Key: KEY) on every endpoint but /health. "
                   "Prefer the environment variable: a command-line key is visible to other users in `ps`.")
@click.option("--drain-timeout", default=30.0, show_default=True,
              help="Seconds a graceful shutdown (Ctrl-C, SIGTERM) waits for in-flight requests.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@user_errors
def serve_command(spec, host, port, max_batch, max_wait_ms, max_length, policy_tokenizer, max_items, max_chars,
                  max_body_bytes, precision, device, api_key, drain_timeout, log_level) -> None:
    """Serve a reward model, a WARM merge or an ensemble (any scorer SPEC) over HTTP.

    OpenRLHF (0.11): POST /get_reward (train with --reward.remote_url http://HOST:PORT/get_reward; versions before
    0.10.2 named it --remote_rm_url), with --policy-tokenizer POLICY_DIR. Also POST /v1/score, GET /health and
    GET /v1/info. SPEC is DIR, DIR1,DIR2 (mean ensemble), min:DIR1,DIR2 or mean_minus_std=0.5:DIR1,DIR2.
    """
    settings = ServeSettings(spec=spec, max_batch=max_batch, max_wait_ms=max_wait_ms, max_items=max_items,
                             max_chars=max_chars, max_body_bytes=max_body_bytes, api_key=api_key)
    if not _is_loopback(host) and not settings.auth:
        click.echo(f"warning: serving on {host} without an API key: anyone who can reach it can use it "
                   "(set WARM_API_KEY)", err=True)
    import uvicorn

    from warm.serve.app import create_app
    from warm.serve.scoring import load_policy_format, load_scorer

    policy = load_policy_format(policy_tokenizer) if policy_tokenizer else None
    scorer = load_scorer(spec, max_batch=max_batch, max_length=max_length, precision=precision, device=device)
    app = create_app(scorer, settings, policy)
    click.echo(f"serving {scorer.name} on http://{host}:{port} (POST /get_reward, /v1/score; GET /health, /v1/info)",
               err=True)
    # uvicorn's graceful shutdown stops accepting, waits up to --drain-timeout for in-flight requests, then runs
    # the app's lifespan exit, where the micro-batcher finishes its queue.
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=drain_timeout)


if __name__ == "__main__":  # `python -m warm.serve.command SPEC ...`, used by benchmarks/serve_load.py
    serve_command(prog_name="warm serve")
