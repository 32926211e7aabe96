"""Batched scoring on tiny BERT reward models: padding and order do not change a score; ensembles reduce members."""

import numpy as np
import pytest
from conftest import make_tiny_model_dir

from warm.data.formats import PreferenceData
from warm.errors import WarmError
from warm.models.loading import load_tokenizer
from warm.score.scorer import EnsembleScorer, RewardModelScorer, Scorer

PROMPTS = ["what is a cat", "tell me about fire", "why", "write python code please", "help"]
RESPONSES = ["a cat is a good dog", "fire is hot and it is bad", "because", "sure here is the code: print(1)", "no"]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("scorer")
    return str(make_tiny_model_dir(root / "a", seed=1)), str(make_tiny_model_dir(root / "b", seed=2))


def test_score_independent_of_batching_and_order(two_models):
    scorer = RewardModelScorer(two_models[0], batch_size=3)
    assert isinstance(scorer, Scorer) and scorer.name == "a" and scorer.max_length == 128  # its contract's
    seqs = scorer.encoder.encode_many(PROMPTS, RESPONSES)[0]
    assert len({len(s) for s in seqs}) > 2  # lengths differ, so batches carry padding
    together = scorer.score_sequences(seqs)
    assert together.dtype == np.float32 and together.shape == (len(seqs),)
    alone = np.array([scorer.score_sequences([s])[0] for s in seqs])
    reversed_order = scorer.score_sequences(seqs[::-1])[::-1]
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together, reversed_order, atol=1e-5)
    # random tiny models spread their rewards over ~1e-4, so also demand padding error far below that spread
    assert np.abs(together - alone).max() < 1e-3 * np.ptp(together)
    assert scorer.score_sequences([]).shape == (0,)


def test_score_texts_and_pairs_agree_with_sequences(two_models):
    scorer = RewardModelScorer(two_models[0], batch_size=2, max_length=16)
    assert scorer.max_length == 16 and any(scorer.encoder.encode(p, r)[1] for p, r in zip(PROMPTS, RESPONSES))
    seqs = scorer.encoder.encode_many(PROMPTS, RESPONSES)[0]
    np.testing.assert_array_equal(scorer.score_texts(PROMPTS, RESPONSES), scorer.score_sequences(seqs))
    rejected = RESPONSES[1:] + RESPONSES[:1]
    chosen_scores, rejected_scores = scorer.score_data(PreferenceData("constructed", PROMPTS, RESPONSES, rejected))
    np.testing.assert_allclose(chosen_scores, scorer.score_texts(PROMPTS, RESPONSES), atol=1e-5)
    np.testing.assert_allclose(rejected_scores, scorer.score_texts(PROMPTS, rejected), atol=1e-5)


def test_ensemble_reduces_member_scores(two_models):
    a, b = (RewardModelScorer(p) for p in two_models)
    single_a, single_b = a.score_texts(PROMPTS, RESPONSES), b.score_texts(PROMPTS, RESPONSES)
    ens = EnsembleScorer(list(two_models))
    assert isinstance(ens, Scorer) and ens.name == "mean:a,b"
    members = ens.score_members(PROMPTS, RESPONSES)
    assert members.shape == (2, len(PROMPTS))
    np.testing.assert_allclose(members, np.stack([single_a, single_b]), atol=1e-5)
    np.testing.assert_allclose(ens.score_texts(PROMPTS, RESPONSES), (single_a + single_b) / 2, atol=1e-5)
    worst = EnsembleScorer(list(two_models), reduction="min")
    np.testing.assert_allclose(worst.score_texts(PROMPTS, RESPONSES), np.minimum(single_a, single_b), atol=1e-5)


def test_ensemble_members_each_read_the_text_their_own_way(two_models, tiny_model_factory):
    other = tiny_model_factory("other", seed=3)
    tokenizer = load_tokenizer(str(other))
    tokenizer.add_tokens(["zebra"])  # another vocabulary: another tokenisation of the same text
    tokenizer.save_pretrained(other)
    texts = [r + " zebra" for r in RESPONSES]
    ens = EnsembleScorer([two_models[0], str(other)], max_length=32)
    own = [RewardModelScorer(p, max_length=32).score_texts(PROMPTS, texts) for p in (two_models[0], str(other))]
    np.testing.assert_allclose(ens.score_members(PROMPTS, texts), np.stack(own), atol=1e-6)


def test_a_model_whose_head_is_drawn_on_load_is_refused(tiny_backbone_dir, tmp_path):
    import shutil

    from warm.data.contract import InputContract
    from warm.models.contract_files import write_contract

    backbone = tmp_path / "backbone"  # a pretrained encoder with a contract, but no reward head
    shutil.copytree(tiny_backbone_dir, backbone)
    write_contract(backbone, InputContract(max_length=64))
    tok = load_tokenizer(str(backbone))
    tok.chat_template = "{{ messages[0]['content'] }} {{ messages[1]['content'] }}"
    tok.save_pretrained(backbone)
    with pytest.raises(WarmError, match=r"backbone: classifier\.bias and 1 more not in the checkpoint.*noise"):
        RewardModelScorer(str(backbone))
    # allowed on request (plumbing tests), then it scores like any model
    assert RewardModelScorer(str(backbone), allow_new_head=True).score_texts(["a"], ["b"]).shape == (1,)


def test_ensemble_and_scorer_argument_errors(two_models):
    with pytest.raises(WarmError, match="unknown ensemble reduction"):
        EnsembleScorer(list(two_models), reduction="median")
    with pytest.raises(WarmError, match="at least one member"):
        EnsembleScorer([])
    with pytest.raises(WarmError, match="batch_size"):
        RewardModelScorer(two_models[0], batch_size=0)
