"""warm.data.contract: the one rule by which a (prompt, response) becomes a reward model's token ids."""

from __future__ import annotations

import json
import warnings

import pytest
from transformers import AutoTokenizer

from warm.data.contract import DECODER_TEMPLATE, ENCODER_TEMPLATE, InputContract, PairEncoder, conversation, new_contract
from warm.models.contract_files import CONTRACT_FILE, common_contract, read_contract, write_contract
from warm.errors import WarmError
from warm.models.loading import load_encoder, load_tokenizer

PROMPT, RESPONSE = "tell me about the cat", "the cat is good because it is helpful"


def test_encoder_template_frames_the_turns_with_the_tokenizers_own_specials(tiny_model_dir):
    encoder = load_encoder(str(tiny_model_dir))
    tok = encoder.tokenizer
    assert encoder.contract.template == "warm-encoder" and encoder.contract.add_special_tokens
    text = encoder.render(PROMPT, RESPONSE)
    assert text == f"user: {PROMPT} [SEP] assistant: {RESPONSE}"
    ids, cut = encoder.encode(PROMPT, RESPONSE)
    assert not cut
    assert ids == tok(text)["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[:3] == ["[CLS]", "user", ":"] and ids[-1] == tok.sep_token_id


def test_long_inputs_lose_their_start_exactly_as_the_saved_tokenizer_truncates(tiny_model_dir):
    encoder = load_encoder(str(tiny_model_dir), max_length=16)
    ids, cut = encoder.encode(PROMPT * 3, RESPONSE)
    assert cut and len(ids) == 16
    text = encoder.render(PROMPT * 3, RESPONSE)
    reloaded = AutoTokenizer.from_pretrained(tiny_model_dir)  # plain transformers: model_max_length 128, left side
    assert reloaded.truncation_side == "left" and reloaded.model_max_length == 128
    assert ids == reloaded(text, truncation=True, max_length=16)["input_ids"]
    full = reloaded(text)["input_ids"]
    assert ids == [full[0], *full[len(full) - 15:]]  # [CLS] kept, then the last 15 tokens: the end of the answer


def test_text_and_conversational_forms_of_the_same_turns_are_one_input(tiny_model_dir):
    encoder = load_encoder(str(tiny_model_dir))
    user, reply = {"role": "user", "content": PROMPT}, {"role": "assistant", "content": RESPONSE}
    plain = encoder.encode(PROMPT, RESPONSE)
    assert encoder.encode([user], [reply]) == plain
    assert encoder.encode([user], RESPONSE) == plain
    assert encoder.encode("", [user, reply]) == plain  # TRL's implicit prompt: every turn in the response
    parts = {"role": "assistant", "content": [{"type": "text", "text": RESPONSE}, {"type": "image"}]}
    assert encoder.encode([user], [parts]) == plain
    assert conversation(PROMPT, RESPONSE) == [user, reply]


def test_a_conversation_must_end_with_the_assistant(tiny_model_dir):
    encoder = load_encoder(str(tiny_model_dir))
    with pytest.raises(WarmError, match="row 2: the conversation has no assistant turn"):
        encoder.encode_many(["a", [{"role": "user", "content": "x"}]], ["b", [{"role": "user", "content": "y"}]],
                            where="input")


def _bos_tokenizer(tmp_path, template: str | None):
    """A decoder tokenizer whose post-processor adds <s> (Llama-style), with the given chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<unk>", "<s>", "</s>", "user", "assistant", ":", "hi", "yes"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>")
    tok.chat_template = template
    return tok


def test_special_tokens_the_template_writes_are_not_added_again(tmp_path):
    writes_bos = "{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    tok = _bos_tokenizer(tmp_path, writes_bos)
    contract = new_contract(tok, 32)
    assert contract.template == "model" and contract.add_special_tokens is False
    ids, _ = PairEncoder(tok, contract).encode("hi", "yes")
    assert ids.count(tok.bos_token_id) == 1 and ids == tok.apply_chat_template(conversation("hi", "yes"))["input_ids"]

    tok = _bos_tokenizer(tmp_path, None)  # no template: warm's decoder template, the tokenizer's <s> in front
    contract = new_contract(tok, 32)
    assert tok.chat_template == DECODER_TEMPLATE and contract.template == "warm-decoder"
    assert contract.add_special_tokens is True
    ids, _ = PairEncoder(tok, contract).encode("hi", "yes")
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "user", ":", "hi", "assistant", ":", "yes"]


def test_a_contract_file_is_read_back_and_checked(tmp_path):
    contract = InputContract(max_length=64, add_special_tokens=False, template="warm-encoder")
    write_contract(tmp_path, contract)
    assert read_contract(tmp_path) == (contract, "file")
    assert json.loads((tmp_path / CONTRACT_FILE).read_text())["reward"].startswith("logits[:, 0]")
    (tmp_path / CONTRACT_FILE).write_text(json.dumps({"format": 2}))
    with pytest.raises(WarmError, match="not a warm input contract"):
        read_contract(tmp_path)
    (tmp_path / CONTRACT_FILE).write_text(json.dumps({"format": 1, "max_length": 64, "rendering": "joined"}))
    with pytest.raises(WarmError, match="unknown rendering 'joined'"):
        read_contract(tmp_path)


def test_pre_contract_warm_models_are_read_as_trained_and_say_so(tmp_path, tiny_model_factory):
    run = tmp_path / "run"
    member = tiny_model_factory("member", contract=False)
    (run / "members").mkdir(parents=True)
    member = member.rename(run / "members" / "m00")
    (member / "warm_member.json").write_text("{}")
    (run / "plan.json").write_text(json.dumps({"training": {"max_length": 48}}))
    with pytest.warns(UserWarning, match="made before warm's input contract.*max length 48"):
        encoder = load_encoder(str(member))
    assert encoder.contract.rendering == "pair_v0" and encoder.max_length == 48
    tok = encoder.tokenizer
    assert encoder.encode(PROMPT, RESPONSE)[0] == tok(PROMPT, RESPONSE, return_token_type_ids=False)["input_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per directory
        load_encoder(str(member))


def test_a_foreign_model_needs_a_chat_template(tiny_model_factory):
    foreign = tiny_model_factory("foreign", contract=False)
    with pytest.raises(WarmError, match="no warm_contract.json and no chat template"):
        load_encoder(str(foreign))
    tok = load_tokenizer(str(foreign))
    tok.chat_template = ENCODER_TEMPLATE
    contract, origin = read_contract(foreign, tok)
    assert origin == "foreign" and contract.max_length == 128  # the model's positions


def test_members_of_a_merge_must_share_one_contract(tmp_path):
    dirs = [tmp_path / name for name in "abc"]
    for d, n in zip(dirs, (64, 32, 64)):
        d.mkdir()
        write_contract(d, InputContract(max_length=n))
    with pytest.warns(UserWarning, match=r"max lengths \[32, 64\]"):
        assert common_contract(dirs).max_length == 32
    write_contract(dirs[2], InputContract(max_length=64, add_special_tokens=False))
    with pytest.raises(WarmError, match="c/warm_contract.json: input contract differs"):
        common_contract(dirs)
    (dirs[2] / CONTRACT_FILE).unlink()
    with pytest.raises(WarmError, match="no warm_contract.json, unlike the other members"):
        common_contract(dirs)
    assert common_contract([dirs[2]]) is None
