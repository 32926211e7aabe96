"""A real uvicorn server on 127.0.0.1: the load benchmark runs against it, and a shutdown drains in-flight work."""

import importlib.util
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from warm.score.scorer import RewardModelScorer
from warm.serve.app import create_app
from warm.serve.settings import ServeSettings

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


def load_script():
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def server(tiny_model_dir):
    """(url, scorer, uvicorn.Server) running in a thread; stopped (gracefully) at the end if still up."""
    scorer = RewardModelScorer(str(tiny_model_dir), max_length=64, batch_size=16)
    port = load_script().free_port()
    config = uvicorn.Config(create_app(scorer, ServeSettings(max_batch=16)), host="127.0.0.1", port=port,
                            log_level="warning", timeout_graceful_shutdown=10)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", scorer, instance
    instance.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_load_benchmark_reports_and_stops_by_itself(server, tmp_path):
    url, _, _ = server
    out = tmp_path / "load.json"
    started = time.monotonic()
    report = load_script().main(["--url", url, "--clients", "1,3", "--duration", "1", "--items", "2",
                                 "--max-requests", "200", "--out", str(out)])
    assert time.monotonic() - started < 20
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert report["server"]["kind"] == "model" and [r["clients"] for r in report["runs"]] == [1, 3]
    for run in report["runs"]:
        assert run["errors"] == 0 and 0 < run["requests"] <= 200
        assert run["requests_per_s"] > 0 and run["items_per_s"] == pytest.approx(2 * run["requests_per_s"], rel=0.01)
        assert run["latency_ms"]["p50"] <= run["latency_ms"]["p95"] <= run["latency_ms"]["p99"]
        assert run["items_per_scorer_call"] >= 1


def test_load_benchmark_refuses_other_hosts():
    with pytest.raises(SystemExit, match="only targets this machine"):
        load_script().main(["--url", "http://192.0.2.1:5000", "--duration", "1"])


def test_shutdown_drains_in_flight_requests(server):
    url, scorer, instance = server
    real = scorer.score_sequences

    def slow(seqs, **kwargs):
        time.sleep(0.8)
        return real(seqs, **kwargs)

    scorer.score_sequences = slow
    replies = []
    worker = threading.Thread(target=lambda: replies.append(
        httpx.post(f"{url}/v1/score", json={"pairs": [{"prompt": "a", "response": "b"}]}, timeout=30)))
    worker.start()
    time.sleep(0.3)  # the request is being scored
    instance.should_exit = True  # what SIGTERM / Ctrl-C does
    worker.join(timeout=30)
    assert replies and replies[0].status_code == 200 and len(replies[0].json()["rewards"]) == 1
