"""merge_models end to end on tiny BERT reward models: the averages, the output directory, the refusals."""

from __future__ import annotations

import json
import shutil
import warnings
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from warm.errors import WarmError
from warm.fileio import sha256_file
from warm.merge.merge import merge_models
from warm.merge.tensor_io import INDEX_FILE, CheckpointReader

FINGERPRINT = "init-0123abcd"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "warm_contract.json")
TEXTS = ["what is a good answer? yes, thank you", "write python code about a cat", "no"]


def make_member(base: Path, dest: Path, seed: int, fingerprint: str | None = FINGERPRINT, dtype=None,
                max_shard_size=None) -> Path:
    """A "fine-tuned" member: the tiny init plus seeded noise, saved as transformers saves it."""
    model = AutoModelForSequenceClassification.from_pretrained(base)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.02 * torch.randn(param.shape, generator=generator))
    if dtype is not None:
        model = model.to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(dest, **kwargs)
    for name in TOKENIZER_FILES:
        shutil.copy(base / name, dest / name)
    if fingerprint is not None:
        record = {"init_fingerprint": fingerprint, "metrics": {"pairwise_accuracy": 0.6 + seed / 100}}
        (dest / "warm_member.json").write_text(json.dumps(record))
    return dest


@pytest.fixture(scope="module")
def members(tiny_model_dir, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("members")
    return [make_member(tiny_model_dir, root / f"m{i:02d}", seed=i + 1) for i in range(3)]


@pytest.fixture()
def out(tmp_path) -> Path:
    return tmp_path / "outs" / "warm"


def weights_of(model_dir: Path) -> dict[str, torch.Tensor]:
    with CheckpointReader(model_dir) as reader:
        return {name: reader.get(name) for name in reader.names()}


def snapshot(dirs) -> dict[str, str]:
    return {str(p): sha256_file(p) for d in dirs for p in sorted(Path(d).rglob("*")) if p.is_file()}


def assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no .warm.*.tmp either


def clone(member: Path, dest: Path) -> Path:
    return Path(shutil.copytree(member, dest))


def rewrite_weights(member: Path, edit) -> None:
    state = load_file(str(member / "model.safetensors"))
    edit(state)
    save_file(state, str(member / "model.safetensors"), metadata={"format": "pt"})


def rewrite_json(path: Path, **changes) -> None:
    payload = json.loads(path.read_text())
    payload.update(changes)
    path.write_text(json.dumps(payload))


def scores(model_dir: Path, model=None) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = model or AutoModelForSequenceClassification.from_pretrained(model_dir)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**batch).logits[:, 0]


# --- the averages ------------------------------------------------------------------------------------------

def test_identical_members_return_the_input_exactly(members, tmp_path, out):
    copies = [members[0]] + [clone(members[0], tmp_path / f"copy{i}") for i in range(2)]
    merge_models(copies, out, progress=False)
    expected, merged = weights_of(members[0]), weights_of(out)
    assert merged.keys() == expected.keys()
    assert all(torch.equal(merged[k], expected[k]) for k in expected)
    single = tmp_path / "single"
    merge_models([members[0]], single, progress=False)  # a merge of one is a copy
    assert all(torch.equal(t, expected[k]) for k, t in weights_of(single).items())


def test_uniform_average_is_the_elementwise_mean(members, out):
    before = snapshot(members)
    info = merge_models(members, out, progress=True)
    assert snapshot(members) == before  # inputs untouched
    states = [weights_of(m) for m in members]
    merged = weights_of(out)
    for name, tensor in merged.items():
        assert tensor.dtype == torch.float32
        torch.testing.assert_close(tensor, torch.stack([s[name] for s in states]).mean(0), atol=1e-6, rtol=0)
    assert info["weights"] == pytest.approx([1 / 3] * 3)


def test_given_weights_are_normalised_and_applied_exactly(members, out):
    info = merge_models(members[:2], out, weights=[1, 3], progress=False)
    assert info["weights"] == [0.25, 0.75]
    a, b, merged = weights_of(members[0]), weights_of(members[1]), weights_of(out)
    for name in a:
        assert torch.equal(merged[name], (0.25 * a[name].double() + 0.75 * b[name].double()).float())


def test_merged_model_loads_and_scores_like_the_averaged_state_dict(members, out):
    merge_models(members, out, progress=False)
    merged_scores = scores(out)
    manual = AutoModelForSequenceClassification.from_pretrained(members[0])
    states = [AutoModelForSequenceClassification.from_pretrained(m).state_dict() for m in members]
    manual.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]})
    torch.testing.assert_close(merged_scores, scores(members[0], manual), atol=1e-5, rtol=0)
    for member in members:  # sanity: the average is a new model, not a copy of one member
        assert (scores(member) - merged_scores).abs().max() > 1e-4


def test_bf16_members_are_averaged_in_float32_and_stored_in_bf16(tiny_model_dir, tmp_path, out):
    pair = [make_member(tiny_model_dir, tmp_path / f"b{i}", seed=i, dtype=torch.bfloat16) for i in range(2)]
    info = merge_models(pair, out, progress=False)
    assert info["dtype"] == "bfloat16"
    a, b, merged = weights_of(pair[0]), weights_of(pair[1]), weights_of(out)
    for name in a:
        assert merged[name].dtype == torch.bfloat16
        assert torch.equal(merged[name], torch.stack([a[name].float(), b[name].float()]).mean(0).to(torch.bfloat16))


def test_sharded_members_and_sharded_output(members, tiny_model_dir, tmp_path, out):
    sharded = [make_member(tiny_model_dir, tmp_path / f"s{i}", seed=i + 1, max_shard_size="20KB") for i in range(3)]
    assert (sharded[0] / INDEX_FILE).is_file()
    info = merge_models(sharded, out, max_shard_bytes=30_000, progress=False)
    assert len(info["weight_files"]) > 2 and (out / INDEX_FILE).is_file()
    reference = tmp_path / "reference"
    merge_models(members, reference, progress=False)  # same members, saved unsharded
    expected, merged = weights_of(reference), weights_of(out)
    assert merged.keys() == expected.keys() and all(torch.equal(merged[k], expected[k]) for k in expected)
    torch.testing.assert_close(scores(out), scores(reference))


def test_streaming_holds_one_tensor_per_member(members, out, monkeypatch):
    live, peak, reads = [0], [0], [0]
    original_get = CheckpointReader.get

    def counting_get(self, name):
        tensor = original_get(self, name)
        live[0] += 1
        reads[0] += 1
        peak[0] = max(peak[0], live[0])
        weakref.finalize(tensor, lambda: live.__setitem__(0, live[0] - 1))
        return tensor

    monkeypatch.setattr(CheckpointReader, "get", counting_get)
    info = merge_models(members, out, progress=False)
    assert reads[0] == len(members) * info["n_tensors"]  # every tensor read once per member
    assert peak[0] <= len(members)  # never more than one tensor per member alive at once
    assert live[0] == 0


def test_output_directory_contents(members, out):
    (members[0] / "training_args.bin").write_bytes(b"not for the merge")
    try:
        info = merge_models(members, out, progress=False)
    finally:
        (members[0] / "training_args.bin").unlink()
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(["config.json", "model.safetensors", "README.md", "warm_merge.json", *TOKENIZER_FILES])
    assert (out / "config.json").read_bytes() == (members[0] / "config.json").read_bytes()
    saved = json.loads((out / "warm_merge.json").read_text())
    assert saved == json.loads(json.dumps(info))
    assert saved["method"] == "linear"
    assert saved["members"] == [str(m.resolve()) for m in members]
    assert saved["init_fingerprint"] == FINGERPRINT and saved["member_fingerprints"] == [FINGERPRINT] * 3
    with CheckpointReader(members[0]) as reader:
        assert saved["n_tensors"] == len(reader.names()) and saved["total_bytes"] == reader.total_bytes()
    assert saved["dtype"] == "float32" and saved["warm_version"] and saved["created"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\ntags: [reward-model, warm, weight-averaging]")
    assert "2401.12187" in card and FINGERPRINT in card and "AutoModelForSequenceClassification" in card
    assert "pairwise_accuracy" in card and "| 2 | `m02` | 0.3333 | 0.63 |" in card


def test_force_replaces_an_existing_output(members, out):
    merge_models(members[:2], out, progress=False)
    with pytest.raises(WarmError, match="already exists"):
        merge_models(members, out, progress=False)
    assert json.loads((out / "warm_merge.json").read_text())["weights"] == [0.5, 0.5]  # untouched
    merge_models(members, out, force=True, progress=False)
    assert len(json.loads((out / "warm_merge.json").read_text())["members"]) == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["warm"]


# --- lineage -----------------------------------------------------------------------------------------------

def test_mixed_init_is_refused_unless_allowed(members, tmp_path, out):
    stranger = clone(members[1], tmp_path / "stranger")
    rewrite_json(stranger / "warm_member.json", init_fingerprint="init-other")
    with pytest.raises(WarmError, match=r"stranger: init fingerprint init-other differs .*--allow-mixed-init"):
        merge_models([members[0], stranger], out, progress=False)
    assert_nothing_left(out)
    with pytest.warns(UserWarning, match="init fingerprint init-other differs"):
        info = merge_models([members[0], stranger], out, allow_mixed_init=True, progress=False)
    assert info["init_fingerprint"] is None and info["member_fingerprints"] == [FINGERPRINT, "init-other"]


def test_missing_fingerprint_only_warns(members, tmp_path, out):
    anonymous = clone(members[1], tmp_path / "anonymous")
    (anonymous / "warm_member.json").unlink()
    with pytest.warns(UserWarning, match="anonymous: no init fingerprint"):
        info = merge_models([members[0], anonymous], out, progress=False)
    assert info["init_fingerprint"] is None and info["member_fingerprints"] == [FINGERPRINT, None]


def test_the_init_itself_can_be_a_member(members, tmp_path, out):
    init = clone(members[0], tmp_path / "init")
    (init / "warm_member.json").unlink()
    (init / "warm_init.json").write_text(json.dumps({"fingerprint": FINGERPRINT}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        info = merge_models([init, members[1]], out, progress=False)
    assert info["init_fingerprint"] == FINGERPRINT


# --- refusals: each names the culprit and leaves nothing behind ---------------------------------------------

def _drop_tensor(state):
    del state["classifier.bias"]


def _reshape_tensor(state):
    state["classifier.weight"] = torch.zeros(2, 32)


def _retype_tensor(state):
    state["classifier.bias"] = state["classifier.bias"].double()


def _nan(state):
    state["classifier.weight"][0, 3] = float("nan")  # the last tensor streamed: found after others were written


def _inf(state):
    state["bert.pooler.dense.weight"][1, 1] = float("inf")


@pytest.mark.parametrize(
    "edit, message",
    [
        (_drop_tensor, r"bad: missing tensor classifier.bias \(present in .*m00\)"),
        (_reshape_tensor, r"classifier.weight: shape \[1, 32\] in .*m00 but \[2, 32\] in .*bad"),
        (_retype_tensor, r"classifier.bias: dtype float32 in .*m00 but float64 in .*bad"),
        (_nan, r"bad: tensor classifier.weight contains NaN"),
        (_inf, r"bad: tensor bert.pooler.dense.weight contains Inf"),
    ],
    ids=["names", "shapes", "dtypes", "nan", "inf"],
)
def test_refused_weights(members, tmp_path, out, edit, message):
    bad = clone(members[1], tmp_path / "bad")
    rewrite_weights(bad, edit)
    before = snapshot([members[0], bad])
    with pytest.raises(WarmError, match=message):
        merge_models([members[0], bad], out, progress=False)
    assert_nothing_left(out)
    assert snapshot([members[0], bad]) == before


@pytest.mark.parametrize(
    "file, changes, message",
    [
        ("config.json", {"architectures": ["BertForMaskedLM"]},
         r"bad/config.json: architectures is \['BertForMaskedLM'\] but \['BertForSequenceClassification'\]"),
        ("config.json", {"model_type": "roberta"}, r"bad/config.json: model_type is 'roberta' but 'bert'"),
        ("tokenizer_config.json", {"pad_token": "[UNK]"}, r"bad/tokenizer_config.json: tokenizer differs"),
    ],
    ids=["architectures", "model_type", "pad_token"],
)
def test_refused_configs(members, tmp_path, out, file, changes, message):
    bad = clone(members[1], tmp_path / "bad")
    rewrite_json(bad / file, **changes)
    with pytest.raises(WarmError, match=message):
        merge_models([members[0], bad], out, progress=False)
    assert_nothing_left(out)


def test_refused_vocabulary_and_tolerated_tokenizer_settings(members, tmp_path, out):
    bad = clone(members[1], tmp_path / "bad")
    with open(bad / "vocab.txt", "a") as handle:
        handle.write("unicorn\n")
    with pytest.raises(WarmError, match=r"bad/vocab.txt: tokenizer differs from .*m00/vocab.txt"):
        merge_models([members[0], bad], out, progress=False)
    assert_nothing_left(out)
    fine = clone(members[1], tmp_path / "fine")
    rewrite_json(fine / "tokenizer_config.json", model_max_length=512)  # does not change any token id
    (fine / "tokenizer.json").unlink()  # present in one member only: skipped with a warning
    with pytest.warns(UserWarning, match="fine: has no tokenizer.json"):
        merge_models([members[0], fine], out, progress=False)


@pytest.mark.parametrize(
    "weights, message",
    [([1.0], "1 weights given for 2 members"), ([1.0, -1.0], "weight 1 is -1.0"), ([0, 0], "all weights are zero"),
     ([float("nan"), 1.0], "weight 0 is nan"),
     ([1e308, 1e308], r"weights 1e\+308, 1e\+308 overflow: their sum is not a finite number")],
    ids=["count", "negative", "zero", "nan", "overflow"],
)
def test_refused_weights_argument(members, out, weights, message):
    with pytest.raises(WarmError, match=message):
        merge_models(members[:2], out, weights=weights, progress=False)
    assert_nothing_left(out)


def test_refused_arguments_and_outputs(members, tmp_path, out):
    with pytest.raises(WarmError, match="at least one member"):
        merge_models([], out, progress=False)
    with pytest.raises(WarmError, match="unknown merge method 'ties'.*linear"):
        merge_models(members, out, method="ties", progress=False)
    assert_nothing_left(out)
    before = snapshot(members)
    with pytest.raises(WarmError, match="the output is member"):
        merge_models(members, members[1], force=True, progress=False)
    with pytest.raises(WarmError, match="the output contains member"):
        merge_models(members, members[0].parent, force=True, progress=False)
    with pytest.raises(WarmError, match="the output lies inside member"):
        merge_models(members, members[0] / "warm", progress=False)
    assert snapshot(members) == before and not (members[0] / "warm").exists()
    with pytest.raises(WarmError, match="not a directory"):
        merge_models([members[0], tmp_path / "absent"], out, progress=False)
    assert_nothing_left(out)
    a_file = members[0].parent / "notes.json"  # --force never turns a file into a directory
    a_file.write_text("{}")
    with pytest.raises(WarmError, match="notes.json: exists and is not a directory"):
        merge_models(members, a_file, force=True, progress=False)
    assert a_file.read_text() == "{}"
    a_file.unlink()


def test_integer_buffers_must_agree(members, tmp_path, out):
    a, b = clone(members[0], tmp_path / "a"), clone(members[1], tmp_path / "b")
    for member, shift in ((a, 0), (b, 1)):
        rewrite_weights(member, lambda state: state.update({"bert.embeddings.position_ids": torch.arange(8) + shift}))
    with pytest.raises(WarmError, match=r"bert.embeddings.position_ids: non-float \(torch.int64\) tensor differs"):
        merge_models([a, b], out, progress=False)
    assert_nothing_left(out)
    rewrite_weights(b, lambda state: state.update({"bert.embeddings.position_ids": torch.arange(8)}))
    merge_models([a, b], out, progress=False)
    assert torch.equal(weights_of(out)["bert.embeddings.position_ids"], torch.arange(8))
