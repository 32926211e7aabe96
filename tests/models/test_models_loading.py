"""Loading checkpoints: every failure is one line naming the directory, never a traceback."""

from __future__ import annotations

import shutil

import pytest
import torch
from click.testing import CliRunner
from conftest import write_pairs

from warm.cli import app
from warm.errors import WarmError
from warm.models.loading import load_reward_model
from warm.score.scorer import RewardModelScorer


def test_a_truncated_safetensors_file_is_one_line(tiny_model_dir, tmp_path):
    broken = tmp_path / "truncated"
    shutil.copytree(tiny_model_dir, broken)
    with open(broken / "model.safetensors", "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(WarmError, match=r"truncated: cannot load \(SafetensorError: .*header"):
        RewardModelScorer(str(broken))
    result = CliRunner().invoke(app, ["eval", "--model", f"x={broken}", "--data",
                                      f"t={write_pairs(tmp_path / 'p.jsonl', n=4)}", "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 2 and result.output.startswith("error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "m.json").exists()


def test_a_pickle_that_is_not_plain_tensors_is_refused_in_one_line(tiny_model_dir, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, pickled)
    model = load_reward_model(str(pickled))
    (pickled / "model.safetensors").unlink()
    torch.save(model, pickled / "pytorch_model.bin")  # a whole module: only a full unpickle could read it
    with pytest.raises(WarmError, match=r"pickled: cannot load \(UnpicklingError: .*save with safetensors"):
        load_reward_model(str(pickled))
