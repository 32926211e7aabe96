"""Fuzzing `warm merge` inputs: members with random tensor names, shapes, dtypes, NaN/Inf positions, configs and
truncated files must merge (to the exact weighted average) or be refused with one WarmError line, and a refused
merge leaves no output and no temporary behind."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from fuzzing import examples
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from warm.errors import WarmError
from warm.merge.merge import merge_models

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int64]
NAMES = ["a.weight", "a.bias", "b.weight", "classifier.weight"]


@st.composite
def member_sets(draw):
    """2-3 members: mostly alike (so merges succeed often), with random differences and damage."""
    base_names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    base = {name: (tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))), draw(st.sampled_from(DTYPES)))
            for name in base_names}
    members = []
    for _ in range(draw(st.integers(2, 3))):
        layout = dict(base)
        if draw(st.booleans()) and draw(st.booleans()):  # a changed tensor
            name = draw(st.sampled_from(NAMES))
            layout[name] = (tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2))), draw(st.sampled_from(DTYPES)))
        members.append({
            "layout": layout,
            "seed": draw(st.integers(0, 2**16)),
            "poison": draw(st.sampled_from([None, None, None, "nan", "inf"])),
            "truncate": draw(st.sampled_from([None, None, None, None, 1, 8, 100])),
            "arch": draw(st.sampled_from(["Tiny", "Tiny", "Tiny", "Other"])),
            "extra_file": draw(st.sampled_from([None, None, "pytorch_model.bin"])),
        })
    weights = draw(st.sampled_from([None, None, "random"]))
    return members, (None if weights is None else draw(st.lists(st.floats(-1, 1e308), min_size=len(members),
                                                                max_size=len(members))))


def write_member(path: Path, spec: dict) -> dict[str, torch.Tensor]:
    path.mkdir(parents=True)
    generator = torch.Generator().manual_seed(spec["seed"])
    tensors = {}
    for name, (shape, dtype) in spec["layout"].items():
        values = torch.randn(shape, generator=generator)
        tensors[name] = (values * 10).to(torch.int64) if dtype == torch.int64 else values.to(dtype)
    if spec["poison"]:
        name = next(n for n, t in tensors.items() if t.is_floating_point()) if any(
            t.is_floating_point() for t in tensors.values()) else None
        if name is not None:
            tensors[name].view(-1)[spec["seed"] % tensors[name].numel()] = float(spec["poison"])
    save_file(tensors, path / "model.safetensors")
    if spec["truncate"]:
        data = (path / "model.safetensors").read_bytes()
        (path / "model.safetensors").write_bytes(data[: max(0, len(data) - spec["truncate"])])
    (path / "config.json").write_text(json.dumps({"architectures": [spec["arch"]], "model_type": "tiny"}))
    if spec["extra_file"]:
        (path / spec["extra_file"]).write_bytes(b"\x80\x04pickle")
    return tensors


@examples(25)
@given(case=member_sets())
def test_merge_merges_exactly_or_refuses_in_one_line(tmp_path_factory, case):
    specs, weights = case
    root = tmp_path_factory.mktemp("merge")
    members = [root / f"m{i}" for i in range(len(specs))]
    written = [write_member(path, spec) for path, spec in zip(members, specs)]
    out = root / "out" / "warm"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # members without lineage warn: not a failure
            info = merge_models(members, out, weights=weights, progress=False)
    except WarmError as exc:
        assert "\n" not in str(exc)
        assert not out.exists() and not list(out.parent.glob(".*")) if out.parent.exists() else True
        return
    merged = load_file(out / "model.safetensors")
    assert set(merged) == set(written[0])
    for name, tensor in merged.items():
        if tensor.is_floating_point():
            expected = sum(w * t[name].double() for w, t in zip(info["weights"], written))
            assert torch.allclose(tensor.double(), expected, rtol=1e-2, atol=1e-2), name
        else:
            assert torch.equal(tensor, written[0][name])
