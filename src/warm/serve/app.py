"""The FastAPI application: routes, auth and error shapes around one scorer and its micro-batcher.

Endpoints (README, "Serving"):
    POST /get_reward   OpenRLHF's remote reward model API: {"query": [...], "prompts"?: [...], "labels"?: [...]}
                       -> {"rewards": [...], "scores": [...], "extra_logs": {...}}
    POST /v1/score     {"pairs": [{"prompt", "response"}, ...], "return_members"?: bool} -> {"rewards": [...],
                       and with return_members: "member_names", "members" (M x N) and "std" (N); a WARM merge
                       served with --members adds "warm_minus_mean" (N) and scores its members only then}
    GET  /health       liveness and batcher counters; never needs the key (for load balancers and probes)
    GET  /v1/info      what is served: spec, kind, members, WARM merge weights, limits, precision, version

Every error is JSON `{"detail": one line, "field": the field at fault or null}`: 401 wrong or missing key,
413 over a size limit, 422 malformed body, 500 scorer failure (the server keeps serving), 503 shutting down.
"""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

import warm
from warm.serve.batcher import BatcherClosed, MicroBatcher
from warm.serve.bodies import (
    ApiError, RewardRequest, ScoreRequest, parse_body, read_body, reward_request_pairs, score_request_pairs,
)
from warm.score.uncertainty import Uncertainty
from warm.serve.rendered_queries import PolicyChatFormat
from warm.serve.scoring import describe, is_ensemble, make_score_fn, member_names, on_demand
from warm.serve.settings import ServeSettings

log = logging.getLogger("warm.serve")


def _key_checker(api_key: str | None):
    """A dependency that refuses (401) requests without the key, given as a bearer token or X-API-Key."""
    # Starlette decodes header bytes as latin-1; encoding back gives the bytes the client sent, which for a
    # non-ASCII key are its UTF-8 bytes.
    expected = api_key.encode("utf-8") if api_key is not None else None

    def check_key(request: Request) -> None:
        if expected is None:
            return
        offered = []
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            offered.append(token.strip())
        if "x-api-key" in request.headers:
            offered.append(request.headers["x-api-key"].strip())
        # compare_digest: the time taken does not reveal how much of a guessed key was right.
        if not any(hmac.compare_digest(o.encode("latin-1", "replace"), expected) for o in offered):
            what = "wrong API key" if offered else "missing API key"
            raise ApiError(401, f"{what}: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                           field="Authorization", headers={"WWW-Authenticate": "Bearer"})

    return check_key


def create_app(scorer, settings: ServeSettings | None = None, policy: PolicyChatFormat | None = None) -> FastAPI:
    """The reward server for `scorer` (any warm Scorer: one model, a WARM merge, an ensemble).

    `policy` reads OpenRLHF queries rendered by the policy's chat template back into plain turns
    (warm.serve.rendered_queries).

    The micro-batcher starts and stops with the app's lifespan: under uvicorn, a graceful shutdown first waits
    for in-flight HTTP requests, then the batcher finishes anything still queued before the process exits.
    (With Starlette's TestClient, use it as a context manager so the lifespan runs.)
    """
    settings = settings or ServeSettings()
    batcher = MicroBatcher(make_score_fn(scorer), max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms)
    info = {**describe(scorer, settings), "policy_template": policy is not None}
    names = member_names(scorer)
    ensemble = is_ensemble(scorer)
    with_members = on_demand(scorer)  # a WARM merge whose members score only when asked (--members)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.close()

    # The API description and its page answer only with the key, like every endpoint but /health: FastAPI's own
    # routes take no dependencies, so they are replaced by authorised ones.
    app = FastAPI(title="warm reward server", version=warm.__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.batcher, app.state.scorer, app.state.settings = batcher, scorer, settings
    authorised = [Depends(_key_checker(settings.api_key))]

    @app.get("/openapi.json", dependencies=authorised, include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=authorised, include_in_schema=False)
    async def docs():
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.payload(), status_code=exc.status, headers=exc.headers)

    async def score(pairs: list[tuple[str, str]], members: bool = False) -> np.ndarray:
        """[N, 1 + M] rows through the batcher: the reward, then each member's (NaN where an on-demand scorer was
        not asked for them)."""
        try:
            rows = await batcher.submit([(prompt, response, members) for prompt, response in pairs])
        except BatcherClosed as exc:
            raise ApiError(503, str(exc)) from None
        except Exception as exc:  # the scorer failed on this request: report it, keep serving the others
            log.exception("scoring %d items failed", len(pairs))
            raise ApiError(500, f"scoring failed: {type(exc).__name__}: {exc}") from None
        return np.asarray(rows, dtype=np.float32).reshape(len(pairs), -1)

    def disagreement(rows: np.ndarray) -> dict[str, list[float]]:
        # Population std over members, the convention of warm.score.reductions (0 for one model); for a WARM
        # merge and its members, also WARM minus the members' mean (warm.score.uncertainty).
        if with_members:
            spread = Uncertainty(rows[:, 0].astype(np.float64), rows[:, 1:].T.astype(np.float64), scorer.weights)
            return {"std": spread.member_std.tolist(), "warm_minus_mean": spread.warm_minus_mean.tolist()}
        return {"std": rows[:, 1:].std(axis=1).tolist()}

    @app.post("/get_reward", dependencies=authorised)
    async def get_reward(request: Request) -> JSONResponse:
        body = parse_body(RewardRequest, await read_body(request, settings.max_body_bytes))
        split = reward_request_pairs(body, settings, policy)
        # OpenRLHF cannot ask for the members per request: with --members, every item gets them.
        rows = await score([(prompt, response) for prompt, response, _ in split], members=with_members)
        rewards = rows[:, 0].tolist()
        # OpenRLHF logs each extra_logs entry (one value per item) to its tracker: the members' disagreement, and
        # whether each query was split into its turns (a fallback to the whole query shows there, not silently).
        extra = {}
        if ensemble or with_members:
            spread = disagreement(rows)
            extra["member_std"] = spread.pop("std")
            extra.update(spread)
        if body.prompts is not None or policy is not None:
            extra["prompt_split"] = [0.0 if how == "none" else 1.0 for _, _, how in split]
        if policy is not None:  # read back from the policy's chat template into the plain turns
            extra["policy_template"] = [1.0 if how == "policy_template" else 0.0 for _, _, how in split]
        return JSONResponse({"rewards": rewards, "scores": rewards, "extra_logs": extra})

    @app.post("/v1/score", dependencies=authorised)
    async def score_pairs(request: Request) -> JSONResponse:
        body = parse_body(ScoreRequest, await read_body(request, settings.max_body_bytes))
        rows = await score(score_request_pairs(body, settings), members=body.return_members)
        out: dict = {"rewards": rows[:, 0].tolist()}
        if body.return_members:
            out.update(member_names=names, members=rows[:, 1:].T.tolist(), **disagreement(rows))
        return JSONResponse(out)

    @app.get("/health")
    async def health() -> JSONResponse:
        status = "draining" if batcher.closing else "ok"
        return JSONResponse({
            "status": status, "model": scorer.name, "scorer_calls": batcher.calls,
            "items_scored": batcher.items_scored, "failures": batcher.failures, "pending_items": batcher.pending_items,
        }, status_code=200 if status == "ok" else 503)

    @app.get("/v1/info", dependencies=authorised)
    async def model_info() -> JSONResponse:
        return JSONResponse(info)

    return app
