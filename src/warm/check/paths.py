"""The ways other tools compute a reward from a model directory, each written the way that tool does it.

Every path takes the sample's (prompt, response) pairs as text and returns one float per pair. Each is checked
against warm's own scorer by warm.check.compare; whether a path is expected to agree is decided from the model's
input contract alone (`expectation`), before anything is scored, so a disagreement is a finding, not a guess.

Recipes followed (read from their sources, pinned in the README's "Using a warm reward model elsewhere"):
- transformers, the card: the usage snippet of the model's README (warm.merge.card.usage_snippet), executed as text.
- pipeline: `pipeline("text-classification")` on the chat-template text, the contract's special tokens, truncation.
- TRL (1.16) `GRPOTrainer(reward_funcs=DIR)`: `apply_chat_template({"messages": p + c})`, then the tokenizer with
  `add_special_tokens=False`, right padding, no truncation, `logits[:, 0]` (trl/trainer/grpo_trainer.py,
  `_calculate_rewards`); its text path joins `p + c` with no template.
- RewardBench (v1 `scripts/run_rm.py`): `truncation_side = "left"`, `apply_chat_template(..., tokenize=False)`, then
  the pipeline with `truncation=True, max_length=--max_length, function_to_apply="none",
  return_token_type_ids=False` (special tokens added by the tokenizer).
- OpenRLHF (0.11) through `warm serve`: one POST /get_reward per sample, the query being the policy's chat-template
  prompt, the answer and the policy's EOS, decoded with special tokens (openrlhf/utils/agent.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable

import numpy as np

from warm.data.contract import CHAT_TEMPLATE, InputContract, conversation
from warm.errors import WarmError

Pairs = tuple[list[str], list[str]]  # (prompts, responses)


class Skipped(Exception):
    """The path cannot run here (a package is missing): reported as skipped, never as passed."""


@dataclass(frozen=True)
class Expectation:
    compatible: bool
    why: str  # what makes it (in)compatible, and what to use instead when it is not


@dataclass(frozen=True)
class ConsumerPath:
    name: str
    tool: str
    run: Callable[[str, Pairs, dict], np.ndarray]
    expectation: Callable[[InputContract, bool], Expectation]


def _torch_model(model_dir: str):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()


def run_card(model_dir: str, pairs: Pairs, options: dict) -> np.ndarray:
    """The model card's snippet, executed as written (its path set to this directory), once per pair."""
    from warm.merge.card import snippet_score, snippet_setup

    namespace: dict = {}
    exec(snippet_setup(model_dir), namespace)  # noqa: S102 - warm's own snippet, the very text the card shows
    score = compile(snippet_score(options["contract"]), "<model card>", "exec")
    rewards = []
    for prompt, response in zip(*pairs):
        namespace["conversation"] = conversation(prompt, response)
        exec(score, namespace)  # noqa: S102
        rewards.append(namespace["reward"])
    return np.asarray(rewards)


def run_pipeline(model_dir: str, pairs: Pairs, options: dict) -> np.ndarray:
    from transformers import AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pipe = pipeline("text-classification", model=model_dir, tokenizer=tokenizer, device="cpu")
    texts = [tokenizer.apply_chat_template(conversation(p, r), tokenize=False) for p, r in zip(*pairs)]
    out = pipe(texts, truncation=True, add_special_tokens=options["contract"].add_special_tokens, batch_size=1)
    return np.asarray([row["score"] for row in out])


def _trl_forward(model_dir: str, texts: list[str]) -> np.ndarray:
    """TRL's reward-model forward: pad = EOS when missing, right padding, no special tokens, no truncation."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = _torch_model(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    rewards = []
    for text in texts:  # one at a time: the reward of a sample must not depend on its batch-mates here
        inputs = tokenizer(text=[text], return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False)
        with torch.inference_mode():
            rewards.append(float(model(**inputs).logits[0, 0]))
    return np.asarray(rewards)


def run_trl_conversational(model_dir: str, pairs: Pairs, options: dict) -> np.ndarray:
    try:
        from trl.data_utils import apply_chat_template
    except ImportError:
        raise Skipped("trl is not installed") from None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = [apply_chat_template({"messages": conversation(p, r)}, tokenizer)["text"] for p, r in zip(*pairs)]
    return _trl_forward(model_dir, texts)


def run_trl_text(model_dir: str, pairs: Pairs, options: dict) -> np.ndarray:
    return _trl_forward(model_dir, [p + r for p, r in zip(*pairs)])


def run_rewardbench(model_dir: str, pairs: Pairs, options: dict) -> np.ndarray:
    from transformers import AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.truncation_side = "left"
    texts = [tokenizer.apply_chat_template(conversation(p, r), tokenize=False) for p, r in zip(*pairs)]
    pipe = pipeline("text-classification", model=_torch_model(model_dir), tokenizer=tokenizer, device="cpu")
    out = pipe(texts, batch_size=1, truncation=True, padding=True, max_length=options["contract"].max_length,
               function_to_apply="none", return_token_type_ids=False)
    return np.asarray([row["score"] for row in out])


def run_warm_reward_function(model_dir: str, pairs: Pairs, options: dict) -> np.ndarray:
    """WarmRewardFunction called as TRL calls it, with conversational rows (text rows are warm's own scorer)."""
    from warm.integrations.reward_function import WarmRewardFunction

    reward = WarmRewardFunction(model_dir, precision="fp32", device="cpu")
    prompts = [[{"role": "user", "content": p}] for p in pairs[0]]
    completions = [[{"role": "assistant", "content": r}] for r in pairs[1]]
    return np.asarray(reward(prompts=prompts, completions=completions, completion_ids=None, trainer_state=None))


def run_served_openrlhf(model_dir: str, pairs: Pairs, options: dict) -> np.ndarray:
    """`warm serve` on 127.0.0.1, asked one query at a time in OpenRLHF 0.11's shape (policy template, EOS kept)."""
    from warm.models.loading import load_tokenizer
    from warm.models.policy import resolve_policy

    policy_dir = resolve_policy(options.get("policy") or model_dir)
    policy = load_tokenizer(policy_dir)
    if not getattr(policy, "chat_template", None):
        raise WarmError(f"{policy_dir}: the policy tokenizer has no chat template (give --policy)")
    port = _free_port()
    command = [sys.executable, "-m", "warm.serve.command", model_dir, "--port", str(port), "--precision", "fp32",
               "--device", "cpu", "--policy-tokenizer", policy_dir, "--log-level", "warning"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WARM_API_KEY", None)
    with _server(command, env, port):
        rewards = []
        for prompt, response in zip(*pairs):
            rendered = policy.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)
            query = rendered + response + (policy.eos_token or "")
            body = {"query": [query], "prompts": [rendered], "labels": [""]}
            reply = _post(f"http://127.0.0.1:{port}/get_reward", body)
            if reply["extra_logs"].get("policy_template") != [1.0]:
                raise WarmError(f"warm serve could not read the query back into its turns: {query[:80]!r}")
            rewards.append(reply["rewards"][0])
    return np.asarray(rewards)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(command: list[str], env: dict, port: int, timeout: float = 120.0):
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise WarmError(f"warm serve exited: {(process.stderr.read() or '').strip().splitlines()[-1:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            if time.monotonic() > deadline:
                raise WarmError(f"warm serve did not answer on port {port} within {timeout:.0f} s")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.loads(reply.read())


# --- what each path is expected to do, from the contract alone ----------------------------------------------------


def _legacy(contract: InputContract) -> Expectation | None:
    if contract.rendering != CHAT_TEMPLATE:
        return Expectation(False, "made before warm's input contract (prompt and response as two segments); "
                                  "score it with warm, or retrain it")
    return None


def _always(contract: InputContract, adds_specials: bool) -> Expectation:
    return _legacy(contract) or Expectation(True, "follows the input contract")


def _warm(contract: InputContract, adds_specials: bool) -> Expectation:
    return Expectation(True, "warm reads every model by its contract (one made before it, as trained)")


def _trl_conversational(contract: InputContract, adds_specials: bool) -> Expectation:
    if _legacy(contract):
        return _legacy(contract)
    if contract.add_special_tokens and adds_specials:
        return Expectation(False, "TRL tokenises reward inputs with add_special_tokens=False, so the tokenizer's own "
                                  "special tokens ([CLS]/[SEP] for encoders) are lost; pass "
                                  "WarmRewardFunction(DIR) as the reward function instead")
    return Expectation(True, f"conversational datasets; inputs within {contract.max_length} tokens (TRL does not "
                             "truncate)")


def _trl_text(contract: InputContract, adds_specials: bool) -> Expectation:
    return Expectation(False, "TRL's text path joins prompt + completion with no chat template; use a conversational "
                              "dataset, or WarmRewardFunction(DIR) as the reward function")


def _rewardbench(contract: InputContract, adds_specials: bool) -> Expectation:
    if _legacy(contract):
        return _legacy(contract)
    if not contract.add_special_tokens and adds_specials:
        return Expectation(False, "RewardBench lets the tokenizer add its special tokens again to the chat-template "
                                  "text (a doubled BOS); score with warm eval")
    return Expectation(True, f"run with --max_length {contract.max_length} (RewardBench's default 2048 exceeds "
                             "what the model was trained on, and an encoder's positions)")


PATHS = (
    ConsumerPath("warm-reward-function", "warm: WarmRewardFunction, conversational rows", run_warm_reward_function,
                 _warm),
    ConsumerPath("model-card", "transformers: the model card's snippet", run_card, _always),
    ConsumerPath("pipeline", 'transformers: pipeline("text-classification")', run_pipeline, _always),
    ConsumerPath("trl-conversational", "TRL GRPOTrainer(reward_funcs=DIR), conversational data",
                 run_trl_conversational, _trl_conversational),
    ConsumerPath("trl-text", "TRL GRPOTrainer(reward_funcs=DIR), text data", run_trl_text, _trl_text),
    ConsumerPath("rewardbench", "RewardBench-style (chat template, pipeline)", run_rewardbench, _rewardbench),
    ConsumerPath("serve-openrlhf", "OpenRLHF 0.11 via warm serve --policy-tokenizer", run_served_openrlhf, _warm),
)
