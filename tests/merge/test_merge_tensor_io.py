"""The lazy safetensors reader and the sharding writer, on the tiny BERT reward model."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from warm.errors import WarmError
from warm.merge.tensor_io import INDEX_FILE, SINGLE_FILE, CheckpointReader, CheckpointWriter


def _state(model_dir) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / SINGLE_FILE))


def test_reader_reads_headers_and_single_tensors(tiny_model_dir):
    expected = _state(tiny_model_dir)
    with CheckpointReader(tiny_model_dir) as reader:
        assert reader.names() == sorted(expected)
        for name, tensor in expected.items():
            assert reader.shape(name) == tuple(tensor.shape)
            assert reader.dtype(name) == tensor.dtype
            assert torch.equal(reader.get(name), tensor)
        assert reader.total_bytes() == sum(t.numel() * t.element_size() for t in expected.values())
        with pytest.raises(WarmError, match="no tensor named nope"):
            reader.get("nope")


def test_writer_default_is_one_file(tmp_path, tiny_model_dir):
    expected = _state(tiny_model_dir)
    writer = CheckpointWriter(tmp_path / "out")
    for name in sorted(expected):
        writer.add(name, expected[name])
    assert writer.finalize() == [SINGLE_FILE]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [SINGLE_FILE]
    back = load_file(str(tmp_path / "out" / SINGLE_FILE))
    assert back.keys() == expected.keys() and all(torch.equal(back[k], expected[k]) for k in expected)


def test_sharded_round_trip_has_transformers_layout(tmp_path, tiny_model_dir):
    expected = _state(tiny_model_dir)
    out = tmp_path / "sharded"
    with CheckpointWriter(out, max_shard_bytes=20_000) as writer:
        for name in sorted(expected):
            writer.add(name, expected[name])
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    count = len(shards)
    assert count > 2
    assert shards == [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]
    assert not list(out.glob(".*"))  # no provisional shard names left
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in expected.values())
    assert set(index["weight_map"]) == set(expected) and set(index["weight_map"].values()) == set(shards)
    for shard in shards:  # shards respect the limit unless a single tensor is bigger than it
        sizes = [t.numel() * t.element_size() for t in load_file(str(out / shard)).values()]
        assert sum(sizes) <= 20_000 or len(sizes) == 1
    with CheckpointReader(out) as reader:
        assert reader.names() == sorted(expected)
        assert all(torch.equal(reader.get(name), expected[name]) for name in expected)
    # transformers loads the layout as its own.
    shutil.copy(tiny_model_dir / "config.json", out / "config.json")
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert torch.equal(model.state_dict()["classifier.weight"], expected["classifier.weight"])


def test_reader_reads_transformers_shards_and_names_a_missing_one(tmp_path, tiny_model_dir):
    out = tmp_path / "hf_sharded"
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).save_pretrained(out, max_shard_size="20KB")
    expected = _state(tiny_model_dir)
    with CheckpointReader(out) as reader:
        assert all(torch.equal(reader.get(name), expected[name]) for name in expected)
    shard = sorted(out.glob("model-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(WarmError, match=f"{shard.name}: shard named in {INDEX_FILE} is missing"):
        CheckpointReader(out)


def test_reader_requires_safetensors(tmp_path, tiny_model_dir):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save(_state(tiny_model_dir), legacy / "pytorch_model.bin")
    with pytest.raises(WarmError, match=r"only pytorch_model.bin found.*safe_serialization=True"):
        CheckpointReader(legacy)
    with pytest.raises(WarmError, match="not a directory"):
        CheckpointReader(tmp_path / "absent")
    with pytest.raises(WarmError, match="no model.safetensors"):
        CheckpointReader(tmp_path)


def test_writer_refuses_a_name_twice(tmp_path):
    writer = CheckpointWriter(tmp_path / "out", max_shard_bytes=8)
    writer.add("a", torch.zeros(4))
    with pytest.raises(WarmError, match="tensor a written twice"):
        writer.add("a", torch.zeros(4))
