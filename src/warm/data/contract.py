"""The input contract: how a (prompt, response) pair or a conversation becomes a reward model's inputs.

A reward model is a function of text, and every tool that loads one (warm, transformers' pipeline, TRL's reward
path, RewardBench, an RLHF trainer calling `warm serve`) must compute the same function. One rule for every model
family (README, "The input contract"):

1. Turns. A text pair (prompt, response) is the conversation [user: prompt, assistant: response]; a conversational
   row (TRL's format) is its own turns. Plain and conversational rows with the same turns get the same reward.
2. Text. The turns are rendered by the tokenizer's chat template, `apply_chat_template(turns, tokenize=False)`: the
   convention of decoder reward models, RewardBench and TRL's conversational reward path. A tokenizer without one
   gets warm's at `warm init` (ENCODER_TEMPLATE or DECODER_TEMPLATE), saved with it.
3. Tokens. The text is tokenised as ONE sequence (token type ids all 0), with the tokenizer's own special tokens
   (`[CLS] ... [SEP]` for BERT) unless the template already writes them (a Llama-3 BOS): never doubled.
4. Length. A sequence longer than `max_length` loses tokens from the LEFT (the start of the conversation goes
   first, the tokenizer's special tokens stay): exactly `tokenizer(text, truncation=True)` with the saved tokenizer,
   whose `truncation_side` and `model_max_length` are the contract's.
5. Reward. `logits[:, 0]`, raw: config.json says `problem_type: regression`, so pipeline applies no sigmoid.

Written beside the weights as warm_contract.json by every command that saves a reward model, and read back by every
command that scores one (warm.models.contract_files). Directories warm made before the contract existed are scored as
they were trained (LEGACY_RENDERING: prompt and response as the tokenizer's two segments, the prompt cut first).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

from warm.errors import WarmError
from warm.fileio import sha256_json

CHAT_TEMPLATE = "chat_template"
LEGACY_RENDERING = "pair_v0"

# For encoders without a chat template (BERT-style): turns as "role: content", separated by the tokenizer's
# separator as in its pre-training pairs; the tokenizer frames the whole with its own [CLS] ... [SEP].
ENCODER_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if not loop.first %} {{ sep_token }} {% endif -%}"
    "{{ message['role'] }}: {{ message['content'] }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %} {{ sep_token }} assistant:{% endif -%}"
)
# For decoders without one (GPT-2-style base models): turns as "role: content" lines.
DECODER_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if not loop.first %}{{ '\\n' }}{% endif -%}"
    "{{ message['role'] }}: {{ message['content'] }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %}{{ '\\nassistant:' }}{% endif -%}"
)


@dataclass(frozen=True)
class InputContract:
    """What a reward model's inputs are; see the module docstring. Frozen: one model, one function."""

    max_length: int
    rendering: str = CHAT_TEMPLATE
    add_special_tokens: bool = True
    truncation_side: str = "left"
    template: str = "model"  # where the chat template came from: "model", "warm-encoder" or "warm-decoder"

    def __post_init__(self) -> None:
        if self.rendering not in (CHAT_TEMPLATE, LEGACY_RENDERING):
            raise WarmError(f"unknown rendering {self.rendering!r} (expected {CHAT_TEMPLATE!r})")
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise WarmError(f"max_length must be an integer of at least 8, got {self.max_length!r}")

    def with_max_length(self, max_length: int | None) -> InputContract:
        return self if max_length is None or max_length == self.max_length else replace(self, max_length=max_length)

    def to_json(self) -> dict:
        return {"format": 1, **asdict(self), "reward": "logits[:, 0], raw (no activation)"}

    @classmethod
    def from_json(cls, payload: Any, where: str) -> InputContract:
        if not isinstance(payload, dict) or payload.get("format") != 1:
            raise WarmError(f"{where}: not a warm input contract (format 1)")
        fields = ("max_length", "rendering", "add_special_tokens", "truncation_side", "template")
        try:
            return cls(**{k: payload[k] for k in fields if k in payload})
        except (TypeError, WarmError) as exc:
            raise WarmError(f"{where}: {exc}") from None


# --- turns ---------------------------------------------------------------------------------------------------------


def content_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a multimodal list (other parts dropped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, dict) and part.get("type", "text") == "text")
    raise WarmError(f"message content must be text or a list of parts, got {type(content).__name__}")


def _messages(value: Any, what: str) -> list[dict]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise WarmError(f"{what}: expected text or a list of {{role, content}} messages, got {type(value).__name__}")
    out = []
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or "content" not in message:
            raise WarmError(f"{what}: expected {{role, content}} messages, got {message!r:.80}")
        out.append({"role": message["role"], "content": content_text(message["content"])})
    return out


def conversation(prompt: Any, response: Any) -> list[dict]:
    """The turns of a (prompt, response) pair in any of TRL's formats (rule 1 of the contract).

    Text prompt and response: [user: prompt, assistant: response]. Messages: the prompt's turns, then the
    response's (a text response is one assistant turn). An empty text prompt beside a message response adds nothing
    (TRL's implicit-prompt conversations keep every turn in the response). The last turn must be the assistant's.
    """
    if isinstance(prompt, str) and isinstance(response, str):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    if isinstance(prompt, str):
        turns = ([{"role": "user", "content": prompt}] if prompt else []) + _messages(response, "response")
    else:
        answer = [{"role": "assistant", "content": response}] if isinstance(response, str) else _messages(response, "response")
        turns = _messages(prompt, "prompt") + answer
    if not turns or turns[-1]["role"] != "assistant":
        raise WarmError("the conversation has no assistant turn to score (its last message must be the assistant's)")
    return turns


def response_text(value: Any) -> str:
    """The words of a response (text, or the content of its assistant turns): what length baselines measure."""
    if isinstance(value, str):
        return value
    return "\n\n".join(m["content"] for m in _messages(value, "response") if m["role"] == "assistant")


def prompt_text(value: Any) -> str:
    """The words of a prompt (text, or the content of its user turns)."""
    if isinstance(value, str):
        return value
    return "\n\n".join(m["content"] for m in _messages(value, "prompt") if m["role"] == "user")


def tokenizer_signature(tokenizer) -> tuple:
    """What must match for two models to share one tokenisation: the vocabulary and the special tokens."""
    specials = tuple(sorted((str(k), str(v)) for k, v in tokenizer.special_tokens_map.items()))
    return specials, tokenizer.get_vocab()


def canonical_key(prompt: Any, response: Any) -> str:
    """A hashable key for a (prompt, response) in any format, to score each distinct input once."""
    if isinstance(prompt, str) and isinstance(response, str):
        return json.dumps([prompt, response], ensure_ascii=False)
    return json.dumps([prompt, response], ensure_ascii=False, sort_keys=True, default=str)


# --- tokens ----------------------------------------------------------------------------------------------------------


class PairEncoder:
    """A tokenizer bound to its model's input contract: the one place text becomes a reward model's token ids."""

    def __init__(self, tokenizer, contract: InputContract) -> None:
        self.tokenizer = tokenizer
        self.contract = contract
        if contract.rendering == CHAT_TEMPLATE:
            if not getattr(tokenizer, "chat_template", None):
                raise WarmError(f"{getattr(tokenizer, 'name_or_path', 'tokenizer')}: its input contract renders the chat "
                                "template, but the tokenizer has none")
            tokenizer.truncation_side = contract.truncation_side

    @property
    def max_length(self) -> int:
        return self.contract.max_length

    @functools.cached_property
    def signature(self) -> str:
        """Equal for two encoders exactly when they turn every input into the same ids."""
        return sha256_json({"tokenizer": tokenizer_signature(self.tokenizer), "contract": self.contract.to_json(),
                            "template": getattr(self.tokenizer, "chat_template", None)})

    def render(self, prompt: Any, response: Any) -> str:
        """The text the model reads (rules 1-2), before tokenisation and truncation."""
        if self.contract.rendering == LEGACY_RENDERING:
            return f"{prompt_text(prompt)}\n{response_text(response)}"  # for display only; see encode
        return self.tokenizer.apply_chat_template(conversation(prompt, response), tokenize=False)

    def encode(self, prompt: Any, response: Any) -> tuple[list[int], bool]:
        """(token ids, whether the sequence was cut to max_length)."""
        ids, cut = self.encode_many([prompt], [response])
        return ids[0], cut[0]

    def encode_many(self, prompts: Sequence[Any], responses: Sequence[Any], where: str | None = None,
                    rows: Sequence[int] | None = None) -> tuple[list[list[int]], list[bool]]:
        """Token ids and cut flags of many pairs; a pair that cannot be rendered is a WarmError naming its row
        (`rows[i]`, the pair's row in `where`; by default its position counted from 1)."""
        if len(prompts) != len(responses):
            raise WarmError(f"prompts and responses differ in length: {len(prompts)}, {len(responses)}")
        if self.contract.rendering == LEGACY_RENDERING:
            from warm.data.legacy_pairs import encode_pair_checked

            pairs = [encode_pair_checked(self.tokenizer, prompt_text(p), response_text(r), self.max_length)
                     for p, r in zip(prompts, responses)]
            return [ids for ids, _ in pairs], [cut for _, cut in pairs]
        texts = []
        for i, (prompt, response) in enumerate(zip(prompts, responses)):
            row = rows[i] if rows is not None else i + 1
            try:
                texts.append(self.render(prompt, response))
            except WarmError as exc:
                raise WarmError(f"{where or 'input'}: row {row}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - jinja raises assorted types for templates that refuse a turn
                raise WarmError(f"{where or 'input'}: row {row}: cannot apply the chat template "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        full = self.tokenizer(texts, add_special_tokens=self.contract.add_special_tokens, verbose=False)["input_ids"]
        cut = [len(ids) > self.max_length for ids in full]
        long = [i for i, is_cut in enumerate(cut) if is_cut]
        if long:  # the tokenizer's own truncation (rule 4), so the ids are those of `tokenizer(text, truncation=True)`
            short = self.tokenizer([texts[i] for i in long], add_special_tokens=self.contract.add_special_tokens,
                                   truncation=True, max_length=self.max_length)["input_ids"]
            for i, ids in zip(long, short):
                full[i] = ids
        return [list(ids) for ids in full], cut


# --- a new model's contract -------------------------------------------------------------------------------------------


def new_contract(tokenizer, max_length: int) -> InputContract:
    """The contract for a reward model warm is about to create from `tokenizer` (`warm init`, `warm sft`).

    A tokenizer without a chat template is given warm's (an encoder's, when it has a separator token), in place.
    """
    template = "model"
    if not getattr(tokenizer, "chat_template", None):
        encoder = getattr(tokenizer, "sep_token", None) is not None
        tokenizer.chat_template = ENCODER_TEMPLATE if encoder else DECODER_TEMPLATE
        template = "warm-encoder" if encoder else "warm-decoder"
    return InputContract(max_length=int(max_length), add_special_tokens=adds_own_special_tokens(tokenizer),
                         template=template)


def adds_own_special_tokens(tokenizer) -> bool:
    """Whether the tokenizer should add its special tokens to rendered text (rule 3).

    False when it adds none, or when the template already writes the ones it would add (so they are not doubled).
    """
    text = tokenizer.apply_chat_template(conversation("a", "b"), tokenize=False)
    with_specials = tokenizer(text, add_special_tokens=True)["input_ids"]
    without = tokenizer(text, add_special_tokens=False)["input_ids"]
    if with_specials == without:
        return False
    start = next((k for k in range(len(with_specials) - len(without) + 1)
                  if with_specials[k:k + len(without)] == without), None)
    if start is None:
        return True
    prefix, suffix = with_specials[:start], with_specials[start + len(without):]
    written = (not prefix or without[:len(prefix)] == prefix) and (not suffix or without[-len(suffix):] == suffix)
    return not written
