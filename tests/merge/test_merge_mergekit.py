"""`--emit-mergekit-yaml`: the mergekit `linear` config that reproduces a warm merge (full or LoRA members)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from warm.cli import app
from warm.errors import WarmError
from warm.merge.mergekit import mergekit_config, write_mergekit_yaml


def copy_as(source: Path, dest: Path, dtype: torch.dtype | None = None) -> Path:
    shutil.copytree(source, dest)
    if dtype is not None:
        weights = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(str(source / "model.safetensors")).items()}
        save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
    (dest / "warm_member.json").write_text('{"init_fingerprint": "tiny"}')
    return dest


def test_cli_writes_the_equivalent_linear_config(tiny_model_dir, tmp_path):
    members = [copy_as(tiny_model_dir, tmp_path / f"m{i}", torch.bfloat16) for i in range(3)]
    config = tmp_path / "configs" / "warm.yml"
    result = CliRunner().invoke(app, ["merge", *map(str, members), "--out", str(tmp_path / "warm"),
                                      "--weights", "1,1,2", "--emit-mergekit-yaml", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert text.startswith("# mergekit equivalent of the warm merge in") and "mergekit-yaml warm.yml OUTPUT_DIR" in text
    assert yaml.safe_load(text) == {
        "models": [
            {"model": str(members[0].resolve()), "parameters": {"weight": 0.25}},
            {"model": str(members[1].resolve()), "parameters": {"weight": 0.25}},
            {"model": str(members[2].resolve()), "parameters": {"weight": 0.5}},
        ],
        "merge_method": "linear",
        "parameters": {"normalize": True},
        "dtype": "bfloat16",
    }


def test_lora_members_become_base_plus_adapter_references(tiny_model_dir, tmp_path):
    info = {"method": "linear", "members": ["/runs/x/members/m00", "/runs/x/members/m01"], "weights": [0.5, 0.5],
            "dtype": "float32", "lora": {"base": str(tiny_model_dir), "output": "adapter"}}
    config = mergekit_config(info)
    # mergekit's ModelReference syntax MODEL+LORA: it merges each adapter into the base, then averages.
    assert [m["model"] for m in config["models"]] == [f"{tiny_model_dir}+/runs/x/members/m00",
                                                      f"{tiny_model_dir}+/runs/x/members/m01"]
    assert config["dtype"] == "float32"  # the base's dtype, whatever the adapters are stored in
    path = write_mergekit_yaml(tmp_path / "lora.yml", info, "/runs/x/warm")
    assert yaml.safe_load(path.read_text()) == config
    with pytest.raises(WarmError, match="no mergekit equivalent"):
        mergekit_config({**info, "method": "ties"})
