"""Sharded checkpoints in and out (issue 7): many shards round trip, mismatched shards are refused by file name.

Members are synthetic safetensors checkpoints written in transformers' sharded layout (model-0000i-of-0000N
shards plus model.safetensors.index.json) by CheckpointWriter; one test goes through transformers itself.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from warm.errors import WarmError
from warm.merge.merge import merge_models
from warm.merge.tensor_io import INDEX_FILE, SINGLE_FILE, CheckpointReader, CheckpointWriter

LAYERS, HIDDEN = 16, 48
SHARD = 30_000  # bytes: every member spreads over about 20 shards


def toy_state(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {"embed.weight": torch.randn(300, HIDDEN, generator=generator)}
    for i in range(LAYERS):
        state[f"layers.{i:02d}.attn.weight"] = torch.randn(HIDDEN, HIDDEN, generator=generator)
        state[f"layers.{i:02d}.mlp.weight"] = torch.randn(2 * HIDDEN, HIDDEN, generator=generator)
        state[f"layers.{i:02d}.norm.weight"] = 1 + 0.1 * torch.randn(HIDDEN, generator=generator)
    state["position_ids"] = torch.arange(64).unsqueeze(0)
    return state


def save_member(dest: Path, state: dict[str, torch.Tensor], shard_bytes: int | None) -> Path:
    """Write `state` as transformers would: one model.safetensors, or shards and an index when `shard_bytes`."""
    with CheckpointWriter(dest, max_shard_bytes=shard_bytes) as writer:
        for name in sorted(state):
            writer.add(name, state[name])
    (dest / "config.json").write_text(json.dumps({"architectures": ["Toy"], "model_type": "toy"}))
    (dest / "warm_member.json").write_text(json.dumps({"init_fingerprint": "toy-init"}))
    return dest


def weights_of(model_dir: Path) -> dict[str, torch.Tensor]:
    with CheckpointReader(model_dir) as reader:
        return {name: reader.get(name) for name in reader.names()}


@pytest.fixture(scope="module")
def states() -> list[dict[str, torch.Tensor]]:
    return [toy_state(seed) for seed in range(3)]


@pytest.fixture()
def sharded(states, tmp_path) -> list[Path]:
    return [save_member(tmp_path / f"s{i}", state, SHARD) for i, state in enumerate(states)]


def shard_files(model_dir: Path) -> list[Path]:
    return sorted(model_dir.glob("model-*-of-*.safetensors"))


def test_many_shards_in_and_out_round_trip(states, sharded, tmp_path):
    assert len(shard_files(sharded[0])) >= 15
    info = merge_models(sharded, tmp_path / "out", max_shard_bytes=SHARD, progress=False)
    out = tmp_path / "out"
    shards = shard_files(out)
    count = len(shards)
    assert count >= 15 and [p.name for p in shards] == [f"model-{i:05d}-of-{count:05d}.safetensors"
                                                         for i in range(1, count + 1)]
    assert info["weight_files"] == [p.name for p in shards] + [INDEX_FILE]
    assert not list(out.glob(".*"))  # no provisional shard left
    index = json.loads((out / INDEX_FILE).read_text())
    assert set(index["weight_map"]) == set(states[0]) and set(index["weight_map"].values()) == {p.name for p in shards}
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in states[0].values())
    for shard in shards:  # each shard is a valid safetensors file, under the limit unless one tensor exceeds it
        tensors = load_file(str(shard))
        assert set(tensors) == {k for k, v in index["weight_map"].items() if v == shard.name}
        assert sum(t.numel() * t.element_size() for t in tensors.values()) <= SHARD or len(tensors) == 1
    merged = weights_of(out)
    for name, first in states[0].items():  # the float64 mean, rounded once (to within an ulp: weights are 1/3)
        expected = torch.stack([s[name].double() for s in states]).mean(0).to(first.dtype)
        torch.testing.assert_close(merged[name], expected, rtol=2**-23, atol=1e-7, msg=name)
    # Sharded again, then back into one file: the same bytes as merging the single-file members directly.
    singles = [save_member(tmp_path / f"f{i}", state, None) for i, state in enumerate(states)]
    merge_models(singles, tmp_path / "direct", progress=False)
    merge_models([out, out], tmp_path / "back", progress=False)  # averaging a model with itself: identity
    assert (tmp_path / "back" / SINGLE_FILE).read_bytes() == (tmp_path / "direct" / SINGLE_FILE).read_bytes()


def test_members_with_different_shard_layouts_merge_alike(states, tmp_path):
    mixed = [save_member(tmp_path / "one", states[0], None), save_member(tmp_path / "small", states[1], 20_000),
             save_member(tmp_path / "large", states[2], 90_000)]
    assert len({len(shard_files(m)) for m in mixed}) == 3  # 0, many, few shards
    uniform = [save_member(tmp_path / f"u{i}", state, None) for i, state in enumerate(states)]
    merge_models(mixed, tmp_path / "mixed", progress=False)
    merge_models(uniform, tmp_path / "uniform", progress=False)
    assert (tmp_path / "mixed" / SINGLE_FILE).read_bytes() == (tmp_path / "uniform" / SINGLE_FILE).read_bytes()


def test_a_missing_shard_is_named(sharded, tmp_path):
    gone = shard_files(sharded[1])[7]
    gone.unlink()
    with pytest.raises(WarmError, match=re.escape(f"{sharded[1] / gone.name}: shard named in {INDEX_FILE} is missing")):
        merge_models(sharded, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_an_index_naming_a_tensor_its_shard_lacks_is_named(sharded, tmp_path):
    index_path = sharded[2] / INDEX_FILE
    index = json.loads(index_path.read_text())
    name = "layers.05.mlp.weight"
    wrong = next(f for f in sorted(set(index["weight_map"].values())) if f != index["weight_map"][name])
    index["weight_map"][name] = wrong
    index_path.write_text(json.dumps(index))
    message = f"{sharded[2] / wrong}: lacks tensor {name} that {INDEX_FILE} says it holds"
    with pytest.raises(WarmError, match=re.escape(message)):
        merge_models(sharded, tmp_path / "out", progress=False)


def test_an_index_missing_a_tensor_is_refused_by_name(sharded, tmp_path):
    index_path = sharded[0] / INDEX_FILE
    index = json.loads(index_path.read_text())
    del index["weight_map"]["layers.03.norm.weight"]
    index_path.write_text(json.dumps(index))
    # Member 0's view lacks the tensor the others have: the refusal names the member and the tensor.
    with pytest.raises(WarmError, match=re.escape(f"{sharded[0]}: missing tensor layers.03.norm.weight")):
        merge_models(sharded, tmp_path / "out", progress=False)


def test_a_corrupt_shard_or_index_is_named(sharded, tmp_path):
    shard = shard_files(sharded[1])[3]
    shard.write_bytes(shard.read_bytes()[:100])  # truncated inside its header
    with pytest.raises(WarmError, match=re.escape(f"{shard}: cannot read safetensors file")):
        merge_models(sharded, tmp_path / "out", progress=False)
    (sharded[2] / INDEX_FILE).write_text('{"metadata": {}}')
    with pytest.raises(WarmError, match=re.escape(f"{sharded[2] / INDEX_FILE}: not a safetensors index")):
        CheckpointReader(sharded[2])


def test_shapes_differing_across_shards_are_refused(states, tmp_path):
    other = dict(states[1])
    other["layers.07.attn.weight"] = torch.randn(HIDDEN, HIDDEN + 1)
    members = [save_member(tmp_path / "a", states[0], SHARD), save_member(tmp_path / "b", other, SHARD)]
    with pytest.raises(WarmError, match=r"layers.07.attn.weight: shape \[48, 48\] in .*a but \[48, 49\] in .*b"):
        merge_models(members, tmp_path / "out", progress=False)


def test_transformers_sharded_members_to_sharded_output_load(tiny_model_dir, tmp_path):
    members = []
    for seed in range(2):
        model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.02 * torch.randn(param.shape, generator=generator))
        dest = tmp_path / f"hf{seed}"
        model.save_pretrained(dest, max_shard_size="20KB")
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tiny_model_dir / name, dest / name)
        members.append(dest)
    assert len(shard_files(members[0])) > 3
    merge_models(members, tmp_path / "out", max_shard_bytes=20_000, progress=False)
    assert len(shard_files(tmp_path / "out")) > 3
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").state_dict()
    a, b = weights_of(members[0]), weights_of(members[1])
    for name in a:
        if name in loaded:
            expected = torch.stack([a[name].double(), b[name].double()]).mean(0).to(a[name].dtype)
            assert torch.equal(loaded[name], expected), name
