"""warm.data.tokenize with the tiny WordPiece tokenizer: the pre-contract pair encoding (pair_v0, how models made
before the input contract read their inputs) and de-duplication by the contract."""

from __future__ import annotations

import pytest

from warm.data.formats import PreferenceData
from warm.data.legacy_pairs import encode_pair_checked
from warm.data.tokenize import tokenize_pairs
from warm.errors import WarmError
from warm.models.loading import load_encoder, load_tokenizer

PROMPT = "please tell me about the cat and the dog"
RESPONSE = "the cat is good because it is helpful"


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_short_pair_is_not_cut(tok):
    out, cut = encode_pair_checked(tok, PROMPT, RESPONSE, max_length=64)
    assert not cut
    assert out == [tok.cls_token_id, *ids(tok, PROMPT), tok.sep_token_id, *ids(tok, RESPONSE), tok.sep_token_id]


def test_prompt_is_cut_from_its_start_and_response_kept(tok):
    p, r = ids(tok, PROMPT), ids(tok, RESPONSE)
    max_length = len(r) + 3 + 4  # room for the response, 3 specials and the last 4 prompt tokens
    out, cut = encode_pair_checked(tok, PROMPT, RESPONSE, max_length)
    assert cut and len(out) == max_length
    assert out == [tok.cls_token_id, *p[-4:], tok.sep_token_id, *r, tok.sep_token_id]


def test_response_is_cut_from_its_end_only_when_it_alone_overflows(tok):
    r = ids(tok, RESPONSE)
    max_length = len(r) - 2
    out, cut = encode_pair_checked(tok, PROMPT, RESPONSE, max_length)
    assert cut and len(out) <= max_length
    body = out[1:-1]  # [CLS] response-start [SEP]: the prompt is gone, the response keeps its beginning
    assert out[0] == tok.cls_token_id and out[-1] == tok.sep_token_id
    assert body == r[: len(body)] and len(body) >= max_length - 3


@pytest.mark.parametrize("max_length", [5, 8, 12, 17, 40])
def test_output_never_exceeds_max_length(tok, max_length):
    for prompt, response in [(PROMPT, RESPONSE), ("", RESPONSE), (PROMPT * 3, "yes"), ("no", RESPONSE * 4)]:
        assert len(encode_pair_checked(tok, prompt, response, max_length)[0]) <= max_length


def test_too_small_max_length_is_an_error(tok):
    with pytest.raises(WarmError, match="max_length"):
        encode_pair_checked(tok, PROMPT, RESPONSE, max_length=3)


def test_repeated_sequences_are_tokenised_once(tiny_model_dir):
    encoder = load_encoder(str(tiny_model_dir), max_length=12)
    prompts = ["what is a cat", "what is a cat", "what is a dog"]
    chosen = ["a good cat", "a good cat", "a dog"]
    rejected = ["a bad cat", "a terrible cat", "a good cat"]
    pairs = tokenize_pairs(encoder, PreferenceData("constructed", prompts, chosen, rejected))
    assert pairs.n_pairs == 3
    assert len(pairs.sequences) == 5  # (cat, good cat) twice; (dog, good cat) differs by prompt
    assert pairs.chosen_index[0] == pairs.chosen_index[1]
    assert pairs.chosen_ids()[2] == encoder.encode("what is a dog", "a dog")[0]
    assert pairs.rejected_ids()[1] == encoder.encode("what is a cat", "a terrible cat")[0]
    unique = {(p, r) for p, c, x in zip(prompts, chosen, rejected) for r in (c, x)}
    assert pairs.truncated == sum(encoder.encode(p, r)[1] for p, r in unique) > 0


def test_a_row_that_cannot_be_rendered_is_named(tiny_model_dir):
    encoder = load_encoder(str(tiny_model_dir))
    question = [{"role": "user", "content": "hi"}]
    data = PreferenceData("pairs.jsonl", [question, question], [[{"role": "assistant", "content": "yes"}]] * 2,
                          [[{"role": "assistant", "content": "no"}], [{"role": "user", "content": "again"}]])
    with pytest.raises(WarmError, match=r"pairs.jsonl: row 2: the conversation has no assistant turn"):
        tokenize_pairs(encoder, data)
