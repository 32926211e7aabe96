"""Request bodies: read within the size limit, parse into typed models, check the limits, turn into pairs.

Why not FastAPI's automatic body parsing: it reads the whole body before any limit applies, and its 422 lists
every pydantic error as nested JSON. Reading the body here enforces `--max-body-bytes` while streaming, and every
error becomes one `{"detail": message, "field": name}` whose message names the field and the limit, like warm's
CLI errors.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request

from warm.serve.rendered_queries import PolicyChatFormat
from warm.serve.settings import ServeSettings


class ApiError(Exception):
    """An error the client caused (or a 5xx we explain): status code, one-line message, the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers

    def payload(self) -> dict:
        return {"detail": self.message, "field": self.field}


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str
    response: str


class ScoreRequest(BaseModel):
    """POST /v1/score: warm's own API. Unknown keys are an error (a misspelt `return_members` would be silent)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    pairs: list[Pair]
    return_members: bool = False


class RewardRequest(BaseModel):
    """POST /get_reward: OpenRLHF's remote reward model API.

    `query` is prompt + response as one text; `prompts` (optional) lets the server split it; `labels` are
    accepted and ignored (they carry reference answers for rule-based rewards). Other keys are ignored, not
    refused, so newer OpenRLHF versions that send more keep working.
    """

    model_config = ConfigDict(extra="ignore", strict=True)
    query: list[str]
    prompts: list[str] | None = None
    labels: Any = None


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) one larger than `limit` before reading it when its length is declared, and
    as soon as it passes the limit when it is streamed without a length (chunked)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, f"invalid Content-Length header {declared!r}", field="Content-Length") from None
        if size > limit:
            raise ApiError(413, f"request body is {size} bytes, the limit is {limit} bytes (--max-body-bytes)", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes (--max-body-bytes)", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _field_name(loc: tuple) -> str:
    """('pairs', 3, 'response') -> 'pairs[3].response'; () -> 'body'."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def parse_body(model: type[BaseModel], body: bytes) -> Any:
    """Validate JSON `body` as `model`; ApiError 422 naming the first field at fault (and how many more)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        first = errors[0]
        if first["type"] == "json_invalid":
            raise ApiError(422, first["msg"], field="body") from None  # "Invalid JSON: <what>, <where>"
        field = _field_name(tuple(first["loc"]))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ApiError(422, f"{field}: {first['msg']}{more}", field=field) from None


def _check_items(field: str, lengths: list[int], settings: ServeSettings) -> None:
    if not lengths:
        raise ApiError(422, f"{field}: must not be empty", field=field)
    if len(lengths) > settings.max_items:
        raise ApiError(413, f"{field}: {len(lengths)} items, the limit is {settings.max_items} per request (--max-items)",
                       field=field)
    for i, length in enumerate(lengths):
        if length > settings.max_chars:
            raise ApiError(413, f"{field}[{i}]: {length} characters, the limit is {settings.max_chars} per item "
                                f"(--max-chars)", field=f"{field}[{i}]")


def score_request_pairs(request: ScoreRequest, settings: ServeSettings) -> list[tuple[str, str]]:
    """(prompt, response) pairs of a /v1/score request, after the limits (an item is prompt + response)."""
    _check_items("pairs", [len(p.prompt) + len(p.response) for p in request.pairs], settings)
    return [(p.prompt, p.response) for p in request.pairs]


def split_query(query: str, prompt: str | None, policy: PolicyChatFormat | None = None) -> tuple[str, str, str]:
    """(prompt, response, how) of one OpenRLHF query; `how` is "policy_template", "prompt" or "none".

    With the policy's chat format (`--policy-tokenizer`), a query rendered by the policy's template is read back
    into the user's words and the answer without its end-of-turn: the plain pair the reward model was trained on.
    Otherwise, when the query starts with its prompt, the rest is the response (exactly: nothing is stripped).
    Failing both, the whole query is scored as the response to an empty prompt.
    """
    if policy is not None:
        turns = policy.split(query)
        if turns is not None:
            return turns[0], turns[1], "policy_template"
    if prompt and query.startswith(prompt):
        return prompt, query[len(prompt):], "prompt"
    return "", query, "none"


def reward_request_pairs(request: RewardRequest, settings: ServeSettings,
                         policy: PolicyChatFormat | None = None) -> list[tuple[str, str, str]]:
    """(prompt, response, how) of each /get_reward query, after the limits (an item is the whole query)."""
    _check_items("query", [len(q) for q in request.query], settings)
    prompts = request.prompts
    if prompts is not None and len(prompts) != len(request.query):
        raise ApiError(422, f"prompts: {len(prompts)} items, but query has {len(request.query)}; give one prompt per "
                            "query or none", field="prompts")
    return [split_query(q, prompts[i] if prompts is not None else None, policy) for i, q in enumerate(request.query)]
