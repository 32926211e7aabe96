"""Bounded memory (issue 7): a merge holds a few tensors (or blocks of rows), never M models, never the output.

The members here are synthetic safetensors checkpoints (an "embedding" much larger than the merge's row block,
layers, an integer buffer) whose total size is many times the cap each test sets on what may be held at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import warm.merge.merge as merge_module
from warm.merge.merge import merge_models
from warm.merge.tensor_io import CheckpointReader, CheckpointWriter

VOCAB, HIDDEN, LAYERS = 2048, 64, 12  # embedding 512 KiB in float32, each layer weight 16 KiB
BLOCK = 16 * 1024  # the row block the tests merge with: the embedding takes 32 blocks


def toy_state(seed: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {"embed.weight": torch.randn(VOCAB, HIDDEN, generator=generator)}
    for i in range(LAYERS):
        state[f"layers.{i}.weight"] = torch.randn(HIDDEN, HIDDEN, generator=generator)
        state[f"layers.{i}.bias"] = torch.randn(HIDDEN, generator=generator)
    state = {name: tensor.to(dtype) for name, tensor in state.items()}
    state["position_ids"] = torch.arange(VOCAB).unsqueeze(0)  # an int buffer: equal across members, kept as is
    return state


def save_member(dest: Path, state: dict[str, torch.Tensor]) -> Path:
    dest.mkdir(parents=True)
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    (dest / "config.json").write_text(json.dumps({"architectures": ["Toy"], "model_type": "toy"}))
    (dest / "warm_member.json").write_text(json.dumps({"init_fingerprint": "toy-init"}))
    return dest


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("toy")
    return [save_member(root / f"m{i}", toy_state(seed=i)) for i in range(4)]


def member_bytes(member: Path) -> int:
    with CheckpointReader(member) as reader:
        return reader.total_bytes()


def f64_mean(members: list[Path]) -> dict[str, torch.Tensor]:
    states = []
    for member in members:
        with CheckpointReader(member) as reader:
            states.append({name: reader.get(name) for name in reader.names()})
    return {name: torch.stack([s[name].double() for s in states]).mean(0) for name in states[0]}


def test_reader_holds_one_block_per_member(members, tmp_path, monkeypatch):
    """Live bytes read from members never exceed M blocks (or M small tensors): far below one member."""
    monkeypatch.setattr(merge_module, "BLOCK_BYTES", BLOCK)
    live, peak, calls = [0], [0], {"get": 0, "get_rows": 0}

    def track(method):
        original = getattr(CheckpointReader, method)

        def wrapper(self, name, *args):
            tensor = original(self, name, *args)
            size = tensor.numel() * tensor.element_size()
            live[0] += size
            peak[0] = max(peak[0], live[0])
            calls[method] += 1
            weakref.finalize(tensor, lambda: live.__setitem__(0, live[0] - size))
            return tensor

        monkeypatch.setattr(CheckpointReader, method, wrapper)

    track("get")
    track("get_rows")
    out = tmp_path / "merged"
    merge_models(members, out, progress=False)
    largest_small = max(HIDDEN * HIDDEN * 4, 8 * VOCAB)  # a layer weight, the int64 position ids
    cap = len(members) * max(BLOCK, largest_small)
    total = sum(member_bytes(m) for m in members)
    assert cap * 8 < member_bytes(members[0]) and cap * 32 < total  # the cap is far below one member
    assert peak[0] <= cap, f"held {peak[0]} bytes of member tensors at once (cap {cap})"
    assert live[0] == 0
    assert calls["get_rows"] == len(members) * (VOCAB * HIDDEN * 4 // BLOCK)  # the embedding, in 32 blocks
    # Block by block is the same average as tensor by tensor: exactly the float64 mean, rounded once.
    expected = f64_mean(members)
    with CheckpointReader(out) as reader:
        for name, mean in expected.items():
            got = reader.get(name)
            assert torch.equal(got, mean.to(got.dtype)), name


def test_blocks_give_the_same_bits_as_whole_tensors(members, tmp_path, monkeypatch):
    monkeypatch.setattr(merge_module, "BLOCK_BYTES", BLOCK)
    merge_models(members, tmp_path / "blocks", weights=[1, 2, 3, 4], progress=False)
    monkeypatch.setattr(merge_module, "BLOCK_BYTES", 1 << 40)
    merge_models(members, tmp_path / "whole", weights=[1, 2, 3, 4], progress=False)
    assert (tmp_path / "blocks/model.safetensors").read_bytes() == (tmp_path / "whole/model.safetensors").read_bytes()


def test_identical_members_return_the_input_bit_for_bit(members, tmp_path, monkeypatch):
    monkeypatch.setattr(merge_module, "BLOCK_BYTES", BLOCK)
    merge_models([members[1]] * 3, tmp_path / "same", progress=False)
    with CheckpointReader(members[1]) as source, CheckpointReader(tmp_path / "same") as merged:
        assert all(torch.equal(source.get(n), merged.get(n)) for n in source.names())


@pytest.mark.parametrize("shard_bytes", [None, 40_000])
def test_writer_holds_no_output_tensor(members, tmp_path, monkeypatch, shard_bytes):
    """With the layout known, every output tensor is on disk (and dropped) before the next one is produced."""
    monkeypatch.setattr(merge_module, "BLOCK_BYTES", BLOCK)
    alive: list[weakref.ref] = []
    held = [0]
    original_add = CheckpointWriter.add

    def add(self, name, tensor):
        held[0] = max(held[0], sum(ref() is not None for ref in alive))
        original_add(self, name, tensor)
        assert not self._shard  # nothing buffered
        alive.append(weakref.ref(tensor))

    monkeypatch.setattr(CheckpointWriter, "add", add)
    info = merge_models(members, tmp_path / "out", max_shard_bytes=shard_bytes, progress=False)
    assert held[0] == 0  # when a tensor is added, no earlier output tensor is alive anywhere
    if shard_bytes:
        assert len(info["weight_files"]) > 5  # many shards, each under the limit unless one tensor is larger
        for file in info["weight_files"][:-1]:
            with CheckpointReader(tmp_path / "out") as reader:
                sizes = [reader.nbytes(n) for n in reader.names() if reader._location[n] == file]
            assert sum(sizes) <= shard_bytes or len(sizes) == 1


def test_buffering_writer_stays_under_the_shard_size(tmp_path):
    """Without a layout (LoRA merges), the writer buffers one shard: never more than max_shard_bytes."""
    state = toy_state(seed=7)
    limit = 40_000
    writer = CheckpointWriter(tmp_path / "out", max_shard_bytes=limit)
    for name in sorted(state):
        writer.add(name, state[name])
        single = len(writer._shard) == 1
        assert writer._shard_bytes <= limit or single
    files = writer.finalize()
    assert len(files) > 5


def test_merge_rss_does_not_grow_with_members_or_model(tmp_path):
    """End to end in a fresh process: merging 6 members of 64 MiB (384 MiB in all) raises peak RSS above the
    post-import level by less than the largest tensor plus a fixed allowance, well under one member, and by about
    as much as merging 2 of them. Peak RSS is reset after the imports (Linux /proc/self/clear_refs)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to reset and read the peak RSS")
    largest = 8 * 2**20
    state = {"embed.weight": torch.randn(largest // 4096, 1024)}  # 8 MiB, merged in 1 MiB blocks
    state.update({f"layers.{i:02d}.weight": torch.randn(512, 512) for i in range(56)})  # 56 x 1 MiB
    members = [save_member(tmp_path / f"m{i}", {n: t + 0.01 * i for n, t in state.items()}) for i in range(6)]
    size = member_bytes(members[0])
    script = textwrap.dedent("""
        import sys, warnings
        from pathlib import Path
        warnings.simplefilter("ignore")
        import warm.merge.merge as m

        def status(key):
            return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                        if line.startswith(key))

        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from the current RSS
        base = status("VmRSS:")
        m.merge_models(sys.argv[2:], sys.argv[1], progress=False)
        print(status("VmHWM:") - base)  # KiB
    """)
    grown = {}
    for count in (2, 6):
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"out{count}"),
                                 *map(str, members[:count])], capture_output=True, text=True, check=True)
        grown[count] = int(result.stdout.split()[-1]) * 1024
    # The allowance covers what a first merge allocates besides tensors (lazy imports, torch's thread pool):
    # about 20 MiB when measured; the merged embedding itself (8 MiB) is held whole before it is written.
    bound = largest + 32 * 2**20
    assert bound < size and 6 * size > 9 * bound
    assert grown[6] < bound, f"peak RSS grew by {grown[6] / 2**20:.1f} MiB merging 6 x {size / 2**20:.0f} MiB"
    assert abs(grown[6] - grown[2]) < 8 * 2**20, grown  # 4 more members: 4 more 1 MiB blocks, not 4 models
