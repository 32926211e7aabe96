"""Shared settings of the fuzzers: few examples in `make test`, as many as FUZZ_EXAMPLES asks for otherwise."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def examples(default: int) -> settings:
    """Hypothesis settings with `default` examples, or FUZZ_EXAMPLES of them (e.g. FUZZ_EXAMPLES=2000 make test)."""
    count = int(os.environ.get("FUZZ_EXAMPLES", default))
    return settings(max_examples=count, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])
