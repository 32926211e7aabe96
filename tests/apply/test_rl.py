"""`warm rl`: RLOO against a constructed reward that must rise; KL to the initial policy; resume; LoRA; the CLI."""

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from transformers import TrainerCallback

from conftest import make_tiny_policy_dir

from warm.apply.rl.config import RLConfig
from warm.apply.rl.run import run_rl
from warm.apply.rl.evaluation import read_rows
from warm.cli import app
from warm.errors import WarmError
from warm.fileio import read_json

QUESTIONS = ["tell me about the cat", "why is water good", "write python code please", "help", "what is fire",
             "who are you", "explain this", "is it good", "how", "list the dog"]
LIKED = {"good", "great", "helpful", "correct", "yes", "sure", "thank", "please", "help", "answer"}


def liked_words(prompts, responses):
    """The constructed reward: how many liked words a response has (a policy can learn to say them)."""
    return [sum(word in LIKED for word in response.split()) for response in responses]


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    rows = [{"prompt_id": f"q{i}", "prompt": q} for i, q in enumerate(QUESTIONS * 2)]
    rows[3]["prompt"] = [{"role": "user", "content": rows[3]["prompt"]}]  # conversational rows mix in
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def config(policy_dir, prompts_file, out, **changes):
    base = RLConfig(reward="liked_words", prompts=prompts_file, kl_coef=0.01, steps=10, out=str(out),
                    policy=policy_dir, eval_every=2, eval_fraction=0.4, num_generations=4, max_new_tokens=8,
                    temperature=1.0, lr=3e-2, batch_size=4, precision="fp32")
    return replace(base, **changes)


def test_reward_rises_kl_starts_at_zero_and_the_run_directory_is_complete(policy_dir, prompts_file, tmp_path):
    out = tmp_path / "run"
    metrics = run_rl(config(policy_dir, prompts_file, out), reward=liked_words, progress=False)
    rows = read_rows(out / "eval.jsonl")
    assert [row["step"] for row in rows] == [0, 2, 4, 6, 8, 10]
    assert rows[0]["kl"] == 0.0  # the initial policy against itself
    assert sum(row["kl"] for row in rows) / len(rows) >= 0 and rows[-1]["kl"] > 0
    assert rows[-1]["proxy_reward"] > rows[0]["proxy_reward"] + 1.0  # the constructed reward is learnt
    assert all(row["n_prompts"] == 8 and row["control_reward"] is None for row in rows)
    train = [row for row in read_rows(out / "train_log.jsonl") if "reward" in row]
    assert [row["step"] for row in train] == list(range(1, 11))
    assert sum(r["reward"] for r in train[-3:]) > sum(r["reward"] for r in train[:3])
    samples = read_rows(out / "eval_samples.jsonl")
    assert len(samples) == 6 * 8 and {s["step"] for s in samples} == {0, 2, 4, 6, 8, 10}
    assert all(s["proxy_reward"] == liked_words(None, [s["response"]])[0] for s in samples)

    saved = read_json(out / "rl_config.json")
    assert saved["status"] == "complete" and saved["config"]["kl_coef"] == 0.01
    assert saved["resolved"]["train_prompts"] == 12 and len(saved["resolved"]["eval_prompt_ids"]) == 8
    assert metrics == read_json(out / "metrics.json")
    assert metrics["steps"] == 10 and metrics["last_eval"] == rows[-1] and metrics["initial_eval"] == rows[0]
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("checkpoint-")) == \
        ["checkpoint-10", "checkpoint-8"]  # --keep-checkpoints 2
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = AutoModelForCausalLM.from_pretrained(out / "final")
    initial = AutoModelForCausalLM.from_pretrained(policy_dir)
    assert not torch.equal(final.lm_head.weight, initial.lm_head.weight)
    assert AutoTokenizer.from_pretrained(out / "final").chat_template
    assert read_json(out / "final" / "warm_rl.json")["config"]["steps"] == 10


class CrashAfterSaving(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_after_an_interruption_writes_each_step_once(policy_dir, prompts_file, tmp_path):
    out = tmp_path / "run"
    first = config(policy_dir, prompts_file, out, steps=6)
    with pytest.raises(KeyboardInterrupt):
        run_rl(first, reward=liked_words, progress=False, callbacks=(CrashAfterSaving(4),))
    assert [row["step"] for row in read_rows(out / "eval.jsonl")] == [0, 2, 4]
    assert read_json(out / "rl_config.json")["status"] == "running" and not (out / "final").exists()
    with pytest.raises(WarmError, match=r"holds a warm rl run \(pass --resume"):
        run_rl(first, reward=liked_words, progress=False)
    with pytest.raises(WarmError, match=r"rl_config\.json: the run there used lr=0\.03, not 0\.1 \(pass --force"):
        run_rl(replace(first, lr=0.1), reward=liked_words, resume=True, progress=False)

    metrics = run_rl(first, reward=liked_words, resume=True, progress=False)
    assert metrics["resumed_from_step"] == 4 and metrics["steps"] == 6
    assert [row["step"] for row in read_rows(out / "eval.jsonl")] == [0, 2, 4, 6]
    assert [row["step"] for row in read_rows(out / "train_log.jsonl") if "reward" in row] == [1, 2, 3, 4, 5, 6]
    assert run_rl(first, reward=liked_words, resume=True, progress=False) == metrics  # finished: nothing to do
    longer = run_rl(replace(first, steps=8), reward=liked_words, resume=True, progress=False)  # --steps may grow
    assert longer["resumed_from_step"] == 6
    assert [row["step"] for row in read_rows(out / "eval.jsonl")] == [0, 2, 4, 6, 8]
    fresh = run_rl(replace(first, steps=2), reward=liked_words, force=True, progress=False)
    assert fresh["steps"] == 2 and [row["step"] for row in read_rows(out / "eval.jsonl")] == [0, 2]


def test_lora_policy_is_merged_and_kl_uses_the_base_model(policy_dir, prompts_file, tmp_path):
    out = tmp_path / "lora"
    run_rl(config(policy_dir, prompts_file, out, steps=2, lora_r=4, lr=5e-2), reward=liked_words, progress=False)
    rows = read_rows(out / "eval.jsonl")
    assert [row["step"] for row in rows] == [0, 2] and rows[0]["kl"] == 0.0 and rows[1]["kl"] != 0.0
    final = out / "final"
    assert (final / "model.safetensors").is_file() and not (final / "adapter_config.json").exists()
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(final)
    initial = AutoModelForCausalLM.from_pretrained(policy_dir)
    assert merged.num_parameters() == initial.num_parameters()
    query = [m.model.layers[0].self_attn.q_proj.weight for m in (merged, initial)]
    assert not torch.equal(*query)


def test_option_errors(policy_dir, prompts_file, tmp_path):
    with pytest.raises(WarmError, match="num_generations must be at least 2"):
        run_rl(config(policy_dir, prompts_file, tmp_path / "x", num_generations=1), reward=liked_words)
    with pytest.raises(WarmError, match="eval_fraction must be in"):
        run_rl(config(policy_dir, prompts_file, tmp_path / "x", eval_fraction=1.0), reward=liked_words)
    with pytest.raises(WarmError, match="not a model directory"):
        run_rl(config(policy_dir, prompts_file, tmp_path / "y", reward=str(tmp_path / "missing")), progress=False)
    assert read_json(tmp_path / "y" / "rl_config.json")["config"]["reward"].endswith("missing")  # written first
    # a run that failed before its first evaluation holds on to nothing: fixed options start afresh
    assert run_rl(config(policy_dir, prompts_file, tmp_path / "y", steps=1), reward=liked_words, progress=False)
    (tmp_path / "z" / "checkpoints").mkdir(parents=True)
    with pytest.raises(WarmError, match=r"z: has warm rl outputs but no rl_config\.json"):
        run_rl(config(policy_dir, prompts_file, tmp_path / "z"), reward=liked_words)


def test_cli_with_reward_models_and_a_control(policy_dir, prompts_file, tiny_model_dir, tiny_model_factory, tmp_path):
    control = tiny_model_factory("control", seed=3)
    eval_file = tmp_path / "held_out.jsonl"
    eval_file.write_text('{"prompt": "what is a cat"}\n{"prompt": "help me"}\n{"prompt": "why"}\n')
    args = ["rl", "--policy", policy_dir, "--reward", str(tiny_model_dir), "--control", str(control),
            "--prompts", prompts_file, "--eval-prompts", str(eval_file), "--kl-coef", "0.003", "--steps", "2",
            "--eval-every", "1", "--num-generations", "2", "--batch-size", "2", "--max-new-tokens", "4",
            "--lr", "1e-3", "--reward-max-length", "64", "--precision", "fp32", "--out", str(tmp_path / "run"),
            "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "step 2: proxy" in result.output and "control" in result.output
    rows = read_rows(tmp_path / "run" / "eval.jsonl")
    assert [row["step"] for row in rows] == [0, 1, 2] and all(row["control_reward"] is not None for row in rows)
    assert rows[0]["proxy_reward"] != rows[0]["control_reward"] and rows[0]["n_prompts"] == 3
    again = CliRunner().invoke(app, args[:-3] + ["--lr", "1e-2", "--out", str(tmp_path / "run")])
    assert again.exit_code == 2 and again.output.count("\n") == 1 and "lr=0.001, not 0.01" in again.output


def test_kl_coef_enters_the_reward_as_trl_applies_it(tmp_path, one_thread):
    """RLOO's advantage of each sample is (r - β·KL) minus the same for its siblings, KL being the sum over the
    completion's tokens of log π - log π_ref at the sampling temperature; with β = 0 the KL has no effect."""
    from warm.apply.sampling.sampler import load_policy
    from warm.apply.rl.trainer import make_trainer
    from warm.integrations.reward_function import WarmRewardFunction

    policy_dir = str(make_tiny_policy_dir(tmp_path / "policy", eos_logit=0.0))  # answers that run on
    items = [{"prompt_id": i, "prompt": q} for i, q in enumerate(QUESTIONS[:2])]
    reward = WarmRewardFunction(liked_words)
    batch = [{"prompt": [{"role": "user", "content": item["prompt"]}]} for item in items for _ in range(2)]

    def advantages(beta: float):
        run = RLConfig(reward="liked_words", prompts="unused", kl_coef=beta, steps=1, out="unused", batch_size=2,
                       num_generations=2, max_new_tokens=5, temperature=0.9, seed=0)
        model, tokenizer, _ = load_policy(policy_dir, items, "cpu", torch.float32, False)
        trainer = make_trainer(run, model, tokenizer, items, reward, "cpu", "fp32", [])
        reference = trainer.ref_model if beta else None
        torch.manual_seed(1)
        with torch.no_grad():  # move the policy away from its reference, so the KL is not zero
            for param in trainer.model.parameters():
                param.add_(0.05 * torch.randn_like(param))
        trainer.model.train()
        torch.manual_seed(2)
        out = trainer._generate_and_score_completions(batch)
        return out, trainer, tokenizer, reference

    out, trainer, tokenizer, reference = advantages(0.5)
    assert out["completion_mask"].sum() > 8  # answers of several tokens, not all alike
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
    n_prompt, keep = out["prompt_ids"].shape[1], out["completion_mask"].float()

    def token_logps(model):
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits[:, n_prompt - 1:-1].float() / 0.9
        return logits.log_softmax(-1).gather(-1, out["completion_ids"][..., None])[..., 0]

    policy_logps = token_logps(trainer.model)
    torch.testing.assert_close((policy_logps * keep).sum(1), out["old_logps"], atol=1e-4, rtol=0)
    kl = ((policy_logps - token_logps(reference)) * keep).sum(1)
    assert kl.abs().min() > 1e-3
    texts = tokenizer.batch_decode(out["completion_ids"] * out["completion_mask"], skip_special_tokens=True)
    penalised = torch.tensor(liked_words(None, texts), dtype=torch.float32) - 0.5 * kl
    pairs = penalised.view(-1, 2)
    expected = (pairs - pairs.flip(1)).view(-1)  # leave-one-out baseline of a group of two: the sibling
    torch.testing.assert_close(out["advantages"], expected, atol=1e-4, rtol=0)
    plain = advantages(0.0)[0]["advantages"]
    assert not torch.allclose(plain, out["advantages"], atol=1e-3)


def test_monte_carlo_kl_matches_the_exact_kl_of_a_tiny_policy(policy_dir):
    """warm rl's KL is the mean over samples of log π(y) - log π_ref(y) (rl_eval.response_logps); with two-token
    answers the exact KL(π || π_ref) can be summed over every answer, and the estimate must land on it."""
    from warm.apply.rl.evaluation import response_logps
    from warm.models.loading import load_causal_lm

    temperature, prompt = 1.0, [2, 9, 10, 11]  # <s> and three words
    reference = load_causal_lm(policy_dir)
    policy = load_causal_lm(policy_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.2 * torch.randn_like(param))
    eos = policy.config.eos_token_id

    def next_logps(model, prefixes):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor(prefixes)).logits[:, -1].double() / temperature
        return logits.log_softmax(-1)

    first_p, first_q = next_logps(policy, [prompt])[0], next_logps(reference, [prompt])[0]
    vocab = first_p.shape[0]
    prefixes = [prompt + [t] for t in range(vocab)]
    second_p, second_q = next_logps(policy, prefixes), next_logps(reference, prefixes)
    # Answers stop after EOS or after two tokens: KL = Σ_y π(y) log π(y)/π_ref(y) over all of them.
    exact = 0.0
    for t in range(vocab):
        head = float(first_p[t] - first_q[t])
        if t == eos:
            exact += float(first_p[t].exp()) * head
        else:
            tail = (second_p[t].exp() * (second_p[t] - second_q[t])).sum()
            exact += float(first_p[t].exp()) * (head + float(tail))
    generator = torch.Generator().manual_seed(3)
    answers = []
    for _ in range(3000):
        t = int(torch.multinomial(first_p.exp(), 1, generator=generator))
        answers.append([t] if t == eos else [t, int(torch.multinomial(second_p[t].exp(), 1, generator=generator))])
    log_ratio = (response_logps(policy, [prompt] * len(answers), answers, temperature, batch_size=256)
                 - response_logps(reference, [prompt] * len(answers), answers, temperature, batch_size=256))
    sem = log_ratio.std() / len(answers) ** 0.5
    assert exact > 0.01 and abs(log_ratio.mean() - exact) < 4 * sem
