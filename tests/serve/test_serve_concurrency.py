"""Many requests at once: each caller gets its own scores, in its own order, and the scorer runs fewer times
than there were requests (micro-batching). Texts are distinct per request and item, so a mix-up would show."""

import asyncio
import threading

import httpx
import numpy as np
import pytest
from conftest import make_tiny_model_dir
from fastapi.testclient import TestClient

from warm.models.loading import load_encoder
from warm.score.scorer import EnsembleScorer
from warm.serve.app import create_app
from warm.serve.settings import ServeSettings

TOPICS = "cat dog water fire code python answer question".split()
N_REQUESTS = 16


def request_texts(r: int) -> tuple[list[str], list[str]]:
    """Request r's 1-4 (prompt, response) pairs, all different from every other request's."""
    n = 1 + r % 4
    prompts = [f"tell me about the {TOPICS[r % 8]} {r}" for _ in range(n)]
    responses = [f"{' '.join(TOPICS[(r + i) % 8] for _ in range(1 + i))} {r * 10 + i} is good" for i in range(n)]
    return prompts, responses


def counting(scorer, method: str) -> list[int]:
    """Replace scorer.<method>(prompts, responses) with a wrapper that records each call's number of items."""
    sizes: list[int] = []
    real = getattr(scorer, method)

    def wrapper(prompts, responses, **kwargs):
        sizes.append(len(prompts))
        return real(prompts, responses, **kwargs)

    setattr(scorer, method, wrapper)
    return sizes


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-concurrency")
    return [str(make_tiny_model_dir(root / name, seed=seed)) for name, seed in (("a", 3), ("b", 4))]


class ChecksumScorer:
    """A stand-in reward: a checksum of the token ids, so distinct texts get distinct rewards, exactly, whatever
    they are batched with. Any mix-up between requests or items shows as a wrong number."""

    name = "checksum"

    def __init__(self, encoder) -> None:
        self.encoder, self.max_length = encoder, encoder.max_length

    def score_members(self, prompts, responses, progress=False) -> np.ndarray:
        seqs = self.encoder.encode_many(prompts, responses)[0]
        return np.array([[sum((i + 1) * t for i, t in enumerate(s)) % 1_000_003 for s in seqs]], dtype=np.float32)


def test_threads_each_get_their_own_scores_in_order(model_dirs):
    scorer = ChecksumScorer(load_encoder(model_dirs[0]))
    sizes = counting(scorer, "score_members")
    results: dict[int, list[float]] = {}
    with TestClient(create_app(scorer, ServeSettings(max_batch=64, max_wait_ms=100))) as client:
        barrier = threading.Barrier(N_REQUESTS)

        def call(r: int) -> None:
            prompts, responses = request_texts(r)
            body = {"pairs": [{"prompt": p, "response": x} for p, x in zip(prompts, responses)]}
            barrier.wait()
            reply = client.post("/v1/score", json=body)
            assert reply.status_code == 200
            results[r] = reply.json()["rewards"]

        threads = [threading.Thread(target=call, args=(r,)) for r in range(N_REQUESTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        health = client.get("/health").json()
    assert sorted(results) == list(range(N_REQUESTS))
    assert len(sizes) < N_REQUESTS and max(sizes) > 4  # batched: fewer calls than requests, several per call
    assert health["scorer_calls"] == len(sizes) and health["items_scored"] == sum(sizes)
    expected = {r: [float(x) for x in scorer.score_members(*request_texts(r))[0]] for r in range(N_REQUESTS)}
    assert len({x for v in expected.values() for x in v}) == sum(len(v) for v in expected.values())  # all distinct
    assert results == expected


def test_async_clients_with_members_and_small_batches(model_dirs):
    """An async client (as RL frameworks use), an ensemble, and max_batch smaller than a request's share."""
    scorer = EnsembleScorer(model_dirs, max_length=64, batch_size=8)
    sizes = counting(scorer, "score_members")
    app = create_app(scorer, ServeSettings(max_batch=8, max_wait_ms=50))

    async def main() -> dict[int, dict]:
        async with app.router.lifespan_context(app):  # httpx's ASGI transport does not run the lifespan
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as http:
                async def call(r: int) -> dict:
                    prompts, responses = request_texts(r)
                    queries = [p + " " + x for p, x in zip(prompts, responses)]
                    reply = await http.post("/get_reward", json={"query": queries, "prompts": prompts})
                    assert reply.status_code == 200
                    return reply.json()

                replies = await asyncio.gather(*(call(r) for r in range(N_REQUESTS)))
        return dict(enumerate(replies))

    replies = asyncio.run(asyncio.wait_for(main(), timeout=60))
    total = sum(len(request_texts(r)[0]) for r in range(N_REQUESTS))
    assert len(sizes) < N_REQUESTS and max(sizes) == 8 and sum(sizes) == total
    for reply in replies.values():
        assert reply["rewards"] == reply["scores"] and len(reply["extra_logs"]["member_std"]) == len(reply["rewards"])
    # /get_reward split each query after its prompt: the response keeps the joining space. One offline call.
    texts = [request_texts(r) for r in range(N_REQUESTS)]
    offline = scorer.score_texts([p for ps, _ in texts for p in ps], [" " + x for _, xs in texts for x in xs])
    served = [x for r in range(N_REQUESTS) for x in replies[r]["rewards"]]
    # Other batch-mates, other padding: equal up to float noise (measured ~1e-8 here; see warm.score.scorer).
    np.testing.assert_allclose(served, offline, rtol=0, atol=1e-6)
