"""The server's limits and knobs, validated once so the app and the batcher can trust them."""

from __future__ import annotations

from dataclasses import dataclass, field

from warm.errors import WarmError

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """What `warm serve` was started with, minus the scorer itself (built from `spec`).

    The limits protect a shared reward server from one client's mistake: a runaway batch, a megabyte "response"
    from a policy that never emitted EOS. Each has a default generous enough for RLHF traffic (OpenRLHF sends one
    rollout micro-batch per call, typically tens to a few hundred texts).
    """

    spec: str = ""  # the scorer spec, reported by /v1/info
    max_batch: int = 64  # items per scorer call (also the scorer's forward batch size)
    max_wait_ms: float = 5.0  # how long the first queued item waits for company before its batch runs
    max_items: int = 1024  # items per request
    max_chars: int = 100_000  # characters per item (prompt + response)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # repr=False: settings get logged and printed; the key must not be.
    api_key: str | None = field(default=None, repr=False)

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
