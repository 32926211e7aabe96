"""LMC curves (WARM Figs. 3-5) on two tiny models: exact end points, in-memory interpolation equal to `warm merge`."""

import json
import shutil
import warnings

import numpy as np
import pytest
import safetensors.torch
import torch
from click.testing import CliRunner
from conftest import make_tiny_model_dir, write_pairs

import warm.evaluate.interpolation as interpolation
from warm.data.formats import PreferenceData
from warm.errors import WarmError
from warm.evaluate.interpolation import check_lambdas, interpolated_state, lmc_curves
from warm.evaluate.command import lmc_command
from warm.metrics import pairwise_correct
from warm.fileio import read_json
from warm.merge.merge import merge_models
from warm.merge.tensor_io import CheckpointReader
from warm.report.figures import plot_lmc
from warm.score.scorer import RewardModelScorer

from conftest import CHOSEN, CORRUPTED, PROMPTS, REJECTED  # noqa: E402  (the small shared split)
OPTIONS = dict(max_length=32, batch_size=3, precision="fp32", n_boot=200, seed=0, progress=False)


def _rewrite_weights(src, dest, edit):
    """Copy model dir `src` to `dest` with its weights passed through `edit(state) -> state`."""
    shutil.copytree(src, dest)
    state = safetensors.torch.load_file(str(dest / "model.safetensors"))
    safetensors.torch.save_file(edit(state), str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest


def _perturb(state):
    gen = torch.Generator().manual_seed(7)
    return {k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v for k, v in state.items()}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmc")
    a = make_tiny_model_dir(root / "a", seed=1)
    return {"a": a, "b": _rewrite_weights(a, root / "b", _perturb), "root": root}


@pytest.fixture(scope="module")
def splits():
    return {"test": PreferenceData("test.jsonl", PROMPTS, CHOSEN, REJECTED, corrupted=CORRUPTED),
            "ood": PreferenceData("ood.jsonl", PROMPTS[::-1], REJECTED[::-1], CHOSEN[::-1])}


@pytest.fixture(scope="module")
def run(dirs, splits):
    """lmc_curves once, counting model loads: A and B only; interior λ reuse A's model in memory."""
    loads = []

    class Counting(RewardModelScorer):
        def __init__(self, path, **kwargs):
            loads.append(path)
            super().__init__(path, **kwargs)

    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny models carry no init fingerprint
        mp.setattr(interpolation, "RewardModelScorer", Counting)
        lmc, scores = lmc_curves(str(dirs["a"]), str(dirs["b"]), splits, [0.5, 0.25], return_scores=True, **OPTIONS)
    return lmc, scores, loads


def test_interpolated_state_is_exact_at_the_ends_and_the_mean_in_the_middle(dirs):
    with CheckpointReader(dirs["a"]) as ra, CheckpointReader(dirs["b"]) as rb:
        a, b = ({n: r.get(n) for n in r.names()} for r in (ra, rb))
        assert all(torch.equal(t, a[n]) for n, t in interpolated_state(ra, rb, 0.0).items())
        assert all(torch.equal(t, b[n]) for n, t in interpolated_state(ra, rb, 1.0).items())
        mid = interpolated_state(ra, rb, 0.5)
    assert set(mid) == set(a) and any(not torch.equal(a[n], b[n]) for n in a)
    for name, tensor in mid.items():
        torch.testing.assert_close(tensor, (a[name] + b[name]) / 2, atol=1e-6, rtol=0)


def test_ends_are_exact_for_bf16_tensors_of_very_different_scales(tmp_path):
    gen = torch.Generator().manual_seed(0)
    big = (torch.randn(64, generator=gen) * 1e30).to(torch.bfloat16)
    small = (torch.randn(64, generator=gen) * 1e-30).to(torch.bfloat16)
    for name, state in (("a", {"w": big, "v": small}), ("b", {"w": small, "v": big})):
        (tmp_path / name).mkdir()
        safetensors.torch.save_file(state, str(tmp_path / name / "model.safetensors"))
    with CheckpointReader(tmp_path / "a") as ra, CheckpointReader(tmp_path / "b") as rb:
        assert torch.equal(interpolated_state(ra, rb, 0.0)["w"], big)
        assert torch.equal(interpolated_state(ra, rb, 1.0)["w"], small)
        assert torch.equal(interpolated_state(ra, rb, 1.0)["v"], big)


def test_schema_and_loads(run):
    lmc, _, loads = run
    json.dumps(lmc, allow_nan=False)
    assert set(lmc) == {"config", "weights", "splits"} and len(loads) == 2  # A and B, nothing per λ
    assert lmc["config"]["lambdas"] == [0.0, 0.25, 0.5, 1.0] and lmc["config"]["precision"] == "fp32"
    test = lmc["splits"]["test"]
    assert test["n_pairs"] == 10 and test["n_sequences"] == 19 and test["n_corrupted"] == 3
    assert test["n_length_adversarial"] == 3 and -1 <= test["reward_correlation"] <= 1
    for point in test["curves"]:
        assert {"lambda", "wa", "ens", "diag", "wa_minus_diag", "wa_minus_ens", "agreement", "length_adversarial",
                "corrupted", "clean"} == set(point)
        assert point["wa"]["lo"] <= point["wa"]["accuracy"] <= point["wa"]["hi"] and point["wa"]["n"] == 10
        assert point["length_adversarial"]["wa"]["n"] == 3 and point["corrupted"]["n"] == 3
        assert set(point["wa_minus_diag"]) == {"diff", "lo", "hi"} and 0 <= point["agreement"] <= 1
    assert "corrupted" not in lmc["splits"]["ood"]["curves"][0]
    w = lmc["weights"]
    assert w["l2_a_b"] > 0 and w["l2_a_mid"] == pytest.approx(w["l2_a_b"] / 2, rel=1e-4)
    assert w["l2_b_mid"] == pytest.approx(w["l2_a_b"] / 2, rel=1e-4) and w["n_params"] > 0


def test_end_points_are_the_models_own_accuracies(run, dirs):
    lmc, _, _ = run
    correct = {}
    for key in ("a", "b"):
        scorer = RewardModelScorer(str(dirs[key]), max_length=32)
        correct[key] = pairwise_correct(scorer.score_texts(PROMPTS, CHOSEN), scorer.score_texts(PROMPTS, REJECTED))
    acc_a, acc_b = correct["a"].mean(), correct["b"].mean()
    curves = lmc["splits"]["test"]["curves"]
    first, last = curves[0], curves[-1]
    assert first["wa"]["accuracy"] == acc_a and first["ens"]["accuracy"] == acc_a and first["diag"] == acc_a
    assert last["wa"]["accuracy"] == acc_b and last["ens"]["accuracy"] == acc_b and last["diag"] == acc_b
    assert first["wa_minus_ens"]["diff"] == 0 and first["wa_minus_diag"]["diff"] == 0 and first["agreement"] == 1
    mid = curves[2]
    assert mid["lambda"] == 0.5 and mid["diag"] == pytest.approx((acc_a + acc_b) / 2)
    adversarial = np.array([len(c) < len(r) for c, r in zip(CHOSEN, REJECTED)])
    assert first["length_adversarial"]["wa"]["accuracy"] == pytest.approx(correct["a"][adversarial].mean())
    assert first["clean"]["wa"] == pytest.approx(correct["a"][~np.array(CORRUPTED)].mean())


def test_in_memory_interpolation_equals_scoring_the_merged_model(run, dirs, splits):
    lmc, scores, _ = run
    for lam in (0.25, 0.5):
        out = dirs["root"] / f"merged-{lam}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            merge_models([dirs["a"], dirs["b"]], out, weights=[1 - lam, lam], progress=False)
        merged = RewardModelScorer(str(out), max_length=32)
        for split, data in splits.items():
            chosen = merged.score_texts(data.prompt, data.chosen)
            np.testing.assert_allclose(scores[split][lam]["chosen"], chosen, atol=1e-5)
            np.testing.assert_allclose(scores[split][lam]["rejected"], merged.score_texts(data.prompt, data.rejected),
                                       atol=1e-5)
    ens = 0.5 * scores["test"][0.0]["chosen"] + 0.5 * scores["test"][1.0]["chosen"]
    ens_rej = 0.5 * scores["test"][0.0]["rejected"] + 0.5 * scores["test"][1.0]["rejected"]
    assert lmc["splits"]["test"]["curves"][2]["ens"]["accuracy"] == pytest.approx(pairwise_correct(ens, ens_rej).mean())


def test_mismatched_tensors_are_refused_by_name(dirs, splits, tmp_path):
    def narrow(state):
        return {**state, "classifier.weight": state["classifier.weight"][:, :16].clone()}

    def drop(state):
        return {k: v for k, v in state.items() if k != "classifier.bias"}

    narrowed = _rewrite_weights(dirs["a"], tmp_path / "narrow", narrow)
    with pytest.raises(WarmError, match="classifier.weight: shape"):
        lmc_curves(str(dirs["a"]), str(narrowed), splits, [0.5], **OPTIONS)
    with CheckpointReader(dirs["a"]) as ra, CheckpointReader(_rewrite_weights(dirs["a"], tmp_path / "drop", drop)) as rd:
        with pytest.raises(WarmError, match="missing tensor classifier.bias"):
            interpolated_state(ra, rd, 0.5)


def test_lambdas_are_checked():
    assert check_lambdas([0.5, 0.5, 0.2]) == [0.0, 0.2, 0.5, 1.0]
    for bad in ([1.5], [-0.1], [float("nan")]):
        with pytest.raises(WarmError, match="must lie in"):
            check_lambdas(bad)


@pytest.mark.filterwarnings("ignore:.*no init fingerprint")
def test_command_writes_json_and_a_figure_that_replots_from_the_json(dirs, tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl", n=8)
    out = tmp_path / "out"
    args = [str(dirs["a"]), str(dirs["b"]), "--data", f"id={data}", "--lambdas", "0.5", "--out", str(out),
            "--max-length", "32", "--n-boot", "50", "--precision", "fp32"]
    result = CliRunner().invoke(lmc_command, args)
    assert result.exit_code == 0, result.output
    lmc = read_json(out / "lmc.json")
    assert (out / "lmc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert lmc["config"]["split_files"] == {"id": str(data)} and lmc["splits"]["id"]["n_pairs"] == 8
    replot = plot_lmc(lmc, tmp_path / "again" / "lmc.png")  # the JSON alone, no model
    assert replot.read_bytes()[:4] == b"\x89PNG"
    bad = CliRunner().invoke(lmc_command, args[:4] + ["--lambdas", "0,x", "--out", str(out)])
    assert bad.exit_code == 2 and "error: --lambdas '0,x'" in bad.output
    bad = CliRunner().invoke(lmc_command, [str(tmp_path / "nowhere")] + args[1:])
    assert bad.exit_code == 2 and "nowhere: not a local model directory" in bad.output
