"""`warm serve`'s options: one frozen dataclass, turned into the command's flags (help written once) and handed to
the app, which trusts them once validated here."""

from __future__ import annotations

from dataclasses import dataclass, field

from warm.config import _help, max_length_field, precision_field
from warm.errors import WarmError

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """What `warm serve` was started with; the scorer itself is built from `spec`.

    The limits protect a shared reward server from one client's mistake: a runaway batch, a megabyte "response"
    from a policy that never emitted EOS. Each has a default generous enough for RLHF traffic (OpenRLHF sends one
    rollout micro-batch per call, typically tens to a few hundred texts).
    """

    spec: str = field(default="", metadata=_help(
        "What to serve: DIR, DIR1,DIR2 (mean ensemble), min:DIR1,DIR2 or mean_minus_std=0.5:DIR1,DIR2.",
        cli="argument"))
    members: bool = field(default=False, metadata=_help(
        "SPEC is a WARM merge: also load the members its warm_merge.json lists, for their disagreement next to the "
        "reward (std, WARM minus their mean): in /v1/score when a request sets return_members (one forward pass "
        "per item otherwise), and in every /get_reward's extra_logs (OpenRLHF cannot ask; 1 + M passes per item)."))
    host: str = field(default="127.0.0.1", metadata=_help(
        "Address to bind. Loopback by default; binding another address without --api-key warns."))
    port: int = field(default=5000, metadata=_help("TCP port (OpenRLHF's examples use 5000)."))
    max_batch: int = field(default=64, metadata=_help(
        "Most items per scorer call; concurrent requests are gathered up to this (micro-batching)."))
    max_wait_ms: float = field(default=5.0, metadata=_help(
        "How long the oldest queued item waits for others to join its micro-batch."))
    max_length: int | None = max_length_field()
    policy_tokenizer: str | None = field(default=None, metadata=_help(
        "The RL policy's model or tokenizer directory (or packaged:smollm2-135m-instruct): /get_reward queries "
        "rendered by its chat template (OpenRLHF sends them so) are read back into the plain (prompt, response) the "
        "reward model was trained on."))
    max_items: int = field(default=1024, metadata=_help("Most items per request (413 above)."))
    max_chars: int = field(default=100_000, metadata=_help("Most characters per item (413 above)."))
    max_body_bytes: int = field(default=DEFAULT_MAX_BODY_BYTES, metadata=_help(
        "Largest request body in bytes (413 above)."))
    precision: str = precision_field("Scoring", default="fp32", note=(
        "fp32 (the default here): an item's reward does not depend on what it is micro-batched with (to ~1e-7); "
        "bf16: about twice the CPU throughput, but a reward moves with its batch-mates "
        "(docs/results/compatibility.md)."))
    device: str | None = field(default=None, metadata=_help(
        "Torch device (default: cuda if available, else cpu)."))
    # repr=False: settings get logged and printed; the key must not be.
    api_key: str | None = field(default=None, repr=False, metadata=_help(
        "Require this key (Authorization: Bearer KEY or X-API-Key: KEY) on every endpoint but /health. Prefer the "
        "environment variable: a command-line key is visible to other users in `ps`.", envvar="WARM_API_KEY"))
    drain_timeout: float = field(default=30.0, metadata=_help(
        "Seconds a graceful shutdown (Ctrl-C, SIGTERM) waits for in-flight requests."))
    log_level: str = field(default="info", metadata=_help(
        "uvicorn's log level.", choices=("critical", "error", "warning", "info", "debug")))

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_items", "max_chars", "max_body_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise WarmError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not self.max_wait_ms >= 0:
            raise WarmError(f"--max-wait-ms must be >= 0, got {self.max_wait_ms!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise WarmError("--api-key is empty (unset WARM_API_KEY, or give a non-empty key)")
        if self.api_key is not None and self.api_key != self.api_key.strip():
            # HTTP clients strip header values, so such a key could never be matched.
            raise WarmError("--api-key starts or ends with whitespace, which no client can send; remove it")

    @property
    def auth(self) -> bool:
        return self.api_key is not None
