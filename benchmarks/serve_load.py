"""Load test for `warm serve`: N concurrent clients POST /get_reward for T seconds; throughput and latency.

    # start a server for SPEC on 127.0.0.1 (a subprocess), run 1, 8 and 32 clients for 20 s each, stop it:
    python benchmarks/serve_load.py --spec runs/bench-serve/warm --clients 1,8,32 --duration 20 --items 8 \
        --out runs/bench-serve/load-warm.json -- --max-length 160
    # or target a running server (loopback only):
    python benchmarks/serve_load.py --url http://127.0.0.1:5000 --clients 8 --duration 10

Each client sends requests one after another (a closed loop, like RL workers waiting for their rewards), each
with K (prompt, response) items from the bundled demo data, OpenRLHF-style: query = prompt + response, with the
prompts. Reported per client count: requests/s, items/s, latency p50/p95/p99 (ms), errors, and the items per
scorer call the server achieved (from /health), which shows the micro-batching at work.

Bounded by construction: only 127.0.0.1/localhost/::1 targets, duration at most 300 s per setting, at most
--max-requests requests per setting (hard cap 100000), a per-request timeout; a started server is stopped
(SIGTERM, then kill) whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gzip
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

MAX_DURATION_S = 300.0
MAX_REQUESTS = 100_000
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
DEMO = Path(__file__).resolve().parents[1] / "src" / "warm" / "data" / "demo" / "test_id.jsonl.gz"


def demo_pairs(limit: int = 512) -> list[tuple[str, str]]:
    with gzip.open(DEMO, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line, _ in zip(handle, range(limit))]
    return [(row["prompt"], row["chosen"]) for row in rows]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(spec: str, port: int, server_args: list[str], api_key: str | None) -> subprocess.Popen:
    """`warm serve SPEC` in a subprocess, so the clients here do not compete with it for the GIL."""
    command = [sys.executable, "-m", "warm.serve.command", spec, "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", *server_args]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if api_key:
        env["WARM_API_KEY"] = api_key
    return subprocess.Popen(command, env=env)


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # graceful: uvicorn drains, the batcher finishes its queue
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(url: str, process: subprocess.Popen | None, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} not ready after {timeout:.0f} s")


async def run_setting(url: str, clients: int, duration: float, items: int, max_requests: int,
                      pairs: list[tuple[str, str]], headers: dict, timeout: float = 300.0) -> dict:
    """One closed-loop run: `clients` tasks, each sending its next request as soon as the last one returned."""
    latencies: list[float] = []
    errors: list[str] = []
    sent = 0
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, limits=limits) as http:
        def body(start: int) -> dict:
            batch = [pairs[(start + i) % len(pairs)] for i in range(items)]
            return {"query": [p + r for p, r in batch], "prompts": [p for p, _ in batch]}

        async def warm_up(index: int) -> None:
            try:  # one request per client before the clock starts: connection set-up, first-call costs
                await http.post("/get_reward", json=body(index))
            except httpx.HTTPError:
                pass

        async def client(index: int) -> None:
            nonlocal sent
            position = index * 7919  # clients walk the data from different places
            while time.perf_counter() < end and sent < max_requests:
                sent += 1
                payload = body(position)
                position += items
                began = time.perf_counter()
                try:
                    reply = await http.post("/get_reward", json=payload)
                    ok = reply.status_code == 200 and len(reply.json()["rewards"]) == items
                    if not ok:
                        errors.append(f"HTTP {reply.status_code}: {reply.text[:200]}")
                except httpx.HTTPError as exc:
                    ok = False
                    errors.append(f"{type(exc).__name__}: {exc}")
                if ok:
                    latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(warm_up(i) for i in range(clients)))
        before = (await http.get("/health")).json()
        load_before = os.getloadavg()
        started = time.perf_counter()
        end = started + duration
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
        after = (await http.get("/health")).json()
    lat = np.asarray(latencies) * 1000.0
    calls = after["scorer_calls"] - before["scorer_calls"]
    scored = after["items_scored"] - before["items_scored"]
    return {
        "clients": clients,
        "items_per_request": items,
        "elapsed_s": round(elapsed, 2),
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "items_per_s": round(len(latencies) * items / elapsed, 1),
        "latency_ms": {name: round(float(np.percentile(lat, q)), 1) if len(lat) else None
                       for name, q in (("p50", 50), ("p95", 95), ("p99", 99))},
        "items_per_scorer_call": round(scored / calls, 1) if calls else None,
        # The machine's 1/5/15-minute load averages before and after: other work on the cores shows here.
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="Arguments after -- go to `warm serve` (e.g. -- --max-length 160).")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--spec", help="Scorer spec to serve in a subprocess on 127.0.0.1.")
    target.add_argument("--url", help="A running server on this machine, e.g. http://127.0.0.1:5000.")
    parser.add_argument("--clients", default="1,8,32", help="Comma-separated concurrent client counts.")
    parser.add_argument("--duration", type=float, default=20.0, help=f"Seconds per setting (at most {MAX_DURATION_S:.0f}).")
    parser.add_argument("--items", type=int, default=8, help="Items (prompt, response) per request.")
    parser.add_argument("--max-requests", type=int, default=20_000, help=f"Requests per setting (at most {MAX_REQUESTS}).")
    parser.add_argument("--timeout", type=float, default=300.0, help="Seconds before one request counts as an error.")
    parser.add_argument("--api-key", default=os.environ.get("WARM_API_KEY"), help="Key to send (and to start the server with).")
    parser.add_argument("--out", help="Write the results as JSON here.")
    args, server_args = parser.parse_known_args(argv)
    server_args = [a for a in server_args if a != "--"]
    duration = min(args.duration, MAX_DURATION_S)
    max_requests = max(1, min(args.max_requests, MAX_REQUESTS))
    client_counts = [int(c) for c in args.clients.split(",")]
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}

    process = None
    url = args.url.rstrip("/") if args.url else f"http://127.0.0.1:{free_port()}"
    if urlparse(url).hostname not in LOOPBACK:
        raise SystemExit(f"{url}: this load test only targets this machine (127.0.0.1, localhost, ::1)")
    try:
        if args.spec:
            process = start_server(args.spec, urlparse(url).port, server_args, args.api_key)
        wait_ready(url, process)
        info = httpx.get(f"{url}/v1/info", headers=headers, timeout=10).json()
        pairs = demo_pairs()
        runs = []
        for clients in client_counts:
            result = asyncio.run(run_setting(url, clients, duration, args.items, max_requests, pairs, headers,
                                             timeout=args.timeout))
            runs.append(result)
            lat = result["latency_ms"]
            print(f"{info.get('name', url)}: {clients:3d} clients  {result['requests_per_s']:8.2f} req/s  "
                  f"{result['items_per_s']:8.1f} items/s  p50 {lat['p50']} ms  p95 {lat['p95']} ms  "
                  f"p99 {lat['p99']} ms  errors {result['errors']}  items/call {result['items_per_scorer_call']}",
                  flush=True)
    finally:
        if process is not None:
            stop_server(process)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "server": {k: info.get(k) for k in ("spec", "name", "kind", "forward_passes_per_item", "max_length",
                                            "precision", "device", "max_batch", "max_wait_ms", "warm_version")},
        "duration_s": duration,
        "runs": runs,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
