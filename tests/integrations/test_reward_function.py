"""WarmRewardFunction: a warm scorer as a TRL reward function, in both dataset formats and in both online trainers."""

import numpy as np
import pytest
from conftest import make_tiny_policy_dir

from warm.errors import WarmError
from warm.data.contract import prompt_text, response_text
from warm.integrations.reward_function import WarmRewardFunction
from warm.score.scorer import RewardModelScorer

PROMPTS = ["tell me about the cat", "why is water good", "write python code please", "help"]


@pytest.fixture(scope="module")
def scorer(tiny_model_dir):
    return RewardModelScorer(str(tiny_model_dir), device="cpu")


def test_text_and_conversational_pairs_score_like_the_scorer(scorer):
    reward = WarmRewardFunction(scorer)
    responses = ["the cat is good", "", "sure: print(1)", "no help"]
    expected = scorer.score_texts(PROMPTS, responses).astype(np.float64)
    text = reward(prompts=PROMPTS, completions=responses, completion_ids=[[1]] * 4, trainer_state=None)
    assert isinstance(text, list) and all(isinstance(r, float) for r in text)
    np.testing.assert_allclose(text, expected, rtol=1e-6)
    chats = [[{"role": "user", "content": p}] for p in PROMPTS]
    answers = [[{"role": "assistant", "content": r}] for r in responses]
    np.testing.assert_allclose(reward(chats, answers), expected, rtol=1e-6)  # the same turns: the same reward
    system = [[{"role": "system", "content": "be brief"}, *chat] for chat in chats]  # a system turn is read too
    with_system = reward(system, answers)
    np.testing.assert_allclose(with_system, scorer.score_texts(system, answers), rtol=1e-6)
    assert not np.allclose(with_system, expected)
    assert reward.__name__ == "model"  # the reward model directory's name: what TRL logs
    assert WarmRewardFunction(scorer, name="gold/rm").__name__ == "gold_rm"
    two_turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"},
                 {"role": "user", "content": [{"type": "text", "text": "why"}, {"type": "image"}]}]
    assert prompt_text(two_turns) == "hi\n\nwhy" and response_text(two_turns) == "yes"


def test_spec_strings_callables_and_normalisation(tiny_model_dir, tiny_model_factory, scorer):
    other = tiny_model_factory("other", seed=1)
    ensemble = WarmRewardFunction(f"min:{tiny_model_dir},{other}", device="cpu")
    single = WarmRewardFunction(str(tiny_model_dir), device="cpu")
    second = WarmRewardFunction(str(other), device="cpu")
    responses = ["good", "bad", "the answer", "yes"]
    np.testing.assert_allclose(ensemble(PROMPTS, responses),
                               np.minimum(single(PROMPTS, responses), second(PROMPTS, responses)), rtol=1e-6)

    def count_good(prompts, responses):
        return [r.split().count("good") for r in responses]

    by_call = WarmRewardFunction(count_good, normalize="batch")
    assert by_call.__name__ == "count_good"
    z = by_call(PROMPTS, ["good good", "good", "", "no"])
    assert abs(np.mean(z)) < 1e-9 and abs(np.std(z) - 1) < 1e-5
    running = WarmRewardFunction(count_good, normalize="running")
    running(PROMPTS, ["good good", "good", "", "no"])
    second_batch = running(PROMPTS[:2], ["good good good", "good"])
    seen = np.array([2, 1, 0, 0, 3, 1], dtype=float)  # normalised with everything seen so far
    np.testing.assert_allclose(second_batch, (np.array([3, 1]) - seen.mean()) / (seen.std() + 1e-6), rtol=1e-6)
    with pytest.raises(WarmError, match="normalize 'zscore'"):
        WarmRewardFunction(count_good, normalize="zscore")
    with pytest.raises(WarmError, match="4 prompts but 3 completions"):
        by_call(PROMPTS, ["a", "b", "c"])
    with pytest.raises(WarmError, match="not a model directory"):
        WarmRewardFunction("no/such/dir")


class Recording(WarmRewardFunction):
    """Keeps what the trainer passed and what it got back, call by call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def __call__(self, prompts, completions, **kwargs):
        rewards = super().__call__(prompts, completions, **kwargs)
        self.calls.append({"prompts": prompts, "completions": completions, "ids": kwargs["completion_ids"],
                           "rewards": rewards})
        return rewards


@pytest.mark.parametrize("kind", ["grpo", "rloo"])
def test_trainers_call_the_reward_with_their_samples(kind, one_thread, scorer, tmp_path):
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    policy = str(make_tiny_policy_dir(tmp_path / "policy"))
    trainer_cls, config_cls = (GRPOTrainer, GRPOConfig) if kind == "grpo" else (RLOOTrainer, RLOOConfig)
    # GRPO gets standard text prompts, RLOO conversational ones: both formats go through a real trainer.
    rows = PROMPTS if kind == "grpo" else [[{"role": "user", "content": p}] for p in PROMPTS]
    reward = Recording(scorer)
    args = config_cls(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=6, learning_rate=1e-3, use_cpu=True, report_to=[], bf16=False,
                      gradient_checkpointing=False, logging_steps=1, save_strategy="no", disable_tqdm=True, seed=0)
    trainer = trainer_cls(model=policy, reward_funcs=reward, args=args,
                          train_dataset=Dataset.from_dict({"prompt": rows}),
                          processing_class=AutoTokenizer.from_pretrained(policy))
    trainer.train()

    assert len(reward.calls) == 2
    tokenizer = trainer.processing_class
    logged = [row[f"rewards/{reward.__name__}/mean"] for row in trainer.state.log_history if "step" in row and
              f"rewards/{reward.__name__}/mean" in row]
    for call, mean in zip(reward.calls, logged, strict=True):
        prompts, completions = call["prompts"], call["completions"]
        assert len(prompts) == 4 and prompts[0] == prompts[1] and prompts[2] == prompts[3]  # 2 prompts x 2 samples
        assert all(p in rows for p in prompts)
        texts = [response_text(c) for c in completions]
        assert texts == tokenizer.batch_decode(call["ids"], skip_special_tokens=True)
        if kind == "rloo":
            assert all(c[0]["role"] == "assistant" for c in completions)
        expected = scorer.score_texts([prompt_text(p) for p in prompts], texts)  # the same turns as plain text
        np.testing.assert_allclose(call["rewards"], expected, rtol=1e-5)
        assert mean == pytest.approx(float(np.mean(expected)), rel=1e-5)
    assert list(trainer._logs["completion"]) == reward.calls[-1]["completions"]  # the trainer's own record
