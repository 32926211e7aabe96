"""`warm serve`: user errors are one line (exit 2), options reach the app, and uvicorn gets the loopback default."""

import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from warm.errors import WarmError
from warm.serve import command
from warm.serve.command import serve_command
from warm.serve.settings import ServeSettings


@pytest.fixture()
def captured(monkeypatch):
    """Replace uvicorn.run: record what it would have served."""
    import uvicorn

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app, **kwargs))
    return seen


def invoke(*args, env=None):
    return CliRunner().invoke(serve_command, list(args), env=env or {})


def test_options_reach_the_app_and_uvicorn(tiny_model_dir, captured):
    result = invoke(str(tiny_model_dir), "--max-length", "64", "--max-batch", "8", "--max-items", "10",
                    "--precision", "fp32", env={"WARM_API_KEY": "from-env"})
    assert result.exit_code == 0, result.output
    assert captured["host"] == "127.0.0.1" and captured["port"] == 5000 and captured["timeout_graceful_shutdown"] == 30
    app = captured["app"]
    assert isinstance(app, FastAPI)
    settings = app.state.settings
    assert settings.max_batch == 8 and settings.max_items == 10 and settings.api_key == "from-env"
    assert "from-env" not in repr(settings)
    assert app.state.scorer.max_length == 64 and app.state.scorer.batch_size == 8
    assert "warning" not in result.output


def test_binding_beyond_loopback_without_a_key_warns(tiny_model_dir, captured):
    result = invoke(str(tiny_model_dir), "--max-length", "64", "--host", "0.0.0.0")
    assert result.exit_code == 0 and "without an API key" in result.output
    assert captured["host"] == "0.0.0.0"


@pytest.mark.parametrize("args, message", [
    (["no/such/model"], "is not a model directory"),
    (["{model}", "--max-length", "999"], "max length 999 exceeds the model's 128 positions"),
    (["{model}", "--max-batch", "0"], "--max-batch must be a positive integer"),
    (["{model}", "--max-wait-ms", "-1"], "--max-wait-ms must be >= 0"),
    (["{model}", "--api-key", " "], "--api-key is empty"),
])
def test_user_errors_are_one_line(tiny_model_dir, captured, args, message):
    result = invoke(*[a.format(model=tiny_model_dir) for a in args])
    assert result.exit_code == 2 and "app" not in captured
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1


def test_settings_validate_themselves():
    assert ServeSettings().max_batch == 64 and not ServeSettings().auth
    with pytest.raises(WarmError, match="--max-chars"):
        ServeSettings(max_chars=0)
    assert command._is_loopback("localhost") and command._is_loopback("::1") and not command._is_loopback("0.0.0.0")
