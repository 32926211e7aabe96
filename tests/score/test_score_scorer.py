"""Batched scoring on tiny BERT reward models: padding and order do not change a score; ensembles reduce members."""

import numpy as np
import pytest
from conftest import make_tiny_model_dir

from warm.data.tokenize import encode_pair, tokenize_pairs
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
    scorer = RewardModelScorer(two_models[0], batch_size=3, max_length=64)
    assert isinstance(scorer, Scorer) and scorer.name == "a"
    seqs = [encode_pair(scorer.tokenizer, p, r, 64) for p, r in zip(PROMPTS, RESPONSES)]
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
    seqs = [encode_pair(scorer.tokenizer, p, r, 16) for p, r in zip(PROMPTS, RESPONSES)]
    np.testing.assert_array_equal(scorer.score_texts(PROMPTS, RESPONSES), scorer.score_sequences(seqs))
    rejected = RESPONSES[1:] + RESPONSES[:1]
    pairs = tokenize_pairs(scorer.tokenizer, PROMPTS, RESPONSES, rejected, 16)
    chosen_scores, rejected_scores = scorer.score_pairs(pairs)
    np.testing.assert_allclose(chosen_scores, scorer.score_texts(PROMPTS, RESPONSES), atol=1e-5)
    np.testing.assert_allclose(rejected_scores, scorer.score_texts(PROMPTS, rejected), atol=1e-5)


def test_ensemble_reduces_member_scores(two_models):
    a, b = (RewardModelScorer(p, max_length=64) for p in two_models)
    single_a, single_b = a.score_texts(PROMPTS, RESPONSES), b.score_texts(PROMPTS, RESPONSES)
    ens = EnsembleScorer(list(two_models), max_length=64)
    assert isinstance(ens, Scorer) and ens.name == "mean:a,b"
    seqs = [encode_pair(ens.tokenizer, p, r, 64) for p, r in zip(PROMPTS, RESPONSES)]
    members = ens.score_member_sequences(seqs)
    assert members.shape == (2, len(PROMPTS))
    np.testing.assert_allclose(members, np.stack([single_a, single_b]), atol=1e-5)
    np.testing.assert_allclose(ens.score_texts(PROMPTS, RESPONSES), (single_a + single_b) / 2, atol=1e-5)
    worst = EnsembleScorer(list(two_models), reduction="min", max_length=64)
    np.testing.assert_allclose(worst.score_sequences(seqs), np.minimum(single_a, single_b), atol=1e-5)


def test_ensemble_refuses_mismatched_tokenizers(two_models, tiny_model_factory):
    other = tiny_model_factory("other", seed=3)
    tokenizer = load_tokenizer(str(other))
    tokenizer.add_tokens(["zebra"])
    tokenizer.save_pretrained(other)
    with pytest.raises(WarmError, match="other.*tokenizer differs.*vocabulary"):
        EnsembleScorer([two_models[0], str(other)])


def test_ensemble_and_scorer_argument_errors(two_models):
    with pytest.raises(WarmError, match="unknown ensemble reduction"):
        EnsembleScorer(list(two_models), reduction="median")
    with pytest.raises(WarmError, match="at least one member"):
        EnsembleScorer([])
    with pytest.raises(WarmError, match="batch_size"):
        RewardModelScorer(two_models[0], batch_size=0)
