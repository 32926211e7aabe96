"""Helpers every command module shares (kept apart from cli.py so command modules can import them freely)."""

from __future__ import annotations

import functools
import signal
import sys
import threading

import click

from warm.errors import WarmError


def user_errors(func):
    """Turn WarmError into a one-line `error: ...` on stderr and exit status 2 (no stack trace)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except WarmError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def parse_named(values: tuple[str, ...], what: str) -> dict[str, str]:
    """Parse repeated NAME=VALUE options, keeping order; duplicate names are an error."""
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise WarmError(f"{what} {item!r}: expected NAME=VALUE")
        if name in parsed:
            raise WarmError(f"{what}: the name {name!r} is given twice")
        parsed[name] = value
    return parsed


def parse_number_list(text: str, option: str, kind: type = float, what: str = "numbers") -> list:
    """"0,0.5,1" -> [0.0, 0.5, 1.0] for a comma-separated option; a one-line error naming the option otherwise."""
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise WarmError(f"{option} {text!r}: expected comma-separated {what}") from None
    if not values:
        raise WarmError(f"{option}: no values given")
    return values


def terminate_like_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C: Python's default would end the process at once, skipping the `finally` blocks
    that remove a half-written output's temporary directory. (`warm serve` installs uvicorn's own handlers.)"""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
