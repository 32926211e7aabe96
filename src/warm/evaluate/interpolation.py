"""Linear mode connectivity (LMC): accuracy along θ(λ) = (1-λ)·θ_A + λ·θ_B against ENS(λ) and Diag.

Why: weight averaging works only if two reward models fine-tuned from one shared init are linearly mode
connected. WARM (Ramé et al. 2024, arXiv 2401.12187) checks it in Figs. 3-5: accuracy of the interpolated
weights, WA(λ), stays at or above "Diag", the chord (1-λ)·acc_A + λ·acc_B, most at λ = 0.5; and the prediction
ensemble ENS(λ), rewarding (1-λ)·r_A + λ·r_B, nearly coincides with WA(λ), WA slightly above out of
distribution. Interpolated models are built in memory (A's model loaded once, its weights replaced per λ), with
`warm.merge.methods.linear`, the same math `warm merge` writes to disk. Each split is tokenised once; A and B
score it themselves (λ = 0 and 1, always included since Diag needs them).

Schema of `lmc_curves` (JSON-able; accuracies are fractions; an empty subset has None for its numbers):

    {"config": {"model_a", "model_b", "lambdas", "max_length", "batch_size", "precision", "n_boot", "seed",
                "alpha", "init_fingerprints": [A, B] (None when unknown), "shared_init": BOOL},
     "weights": {"l2_a_b", "l2_a_mid", "l2_b_mid", "norm_a", "norm_b", "n_params"},  # float tensors only
     "splits": {SPLIT: {"source", "n_pairs", "n_sequences", "n_truncated", "n_length_adversarial",
                        "n_corrupted": INT | None, "reward_correlation": FLOAT | None (Pearson r_A, r_B over
                        the unique sequences: low = diverse members),
                        "curves": [POINT per λ, ascending]}}}
    POINT = {"lambda", **CURVE, "agreement": fraction of pairs where sign(WA margin) == sign(ENS margin),
             "length_adversarial": CURVE (pairs whose chosen response is shorter),
             "corrupted": SUBSET, "clean": SUBSET}                         # the last two only with `corrupted`
    CURVE = {"wa": SUMMARY, "ens": SUMMARY, "diag": FLOAT, "wa_minus_diag": DIFF, "wa_minus_ens": DIFF}
    SUBSET = {"wa", "ens", "diag": FLOAT, "n": INT}       SUMMARY, DIFF: warm.evaluate.pairwise's
Per pair, Diag scores (1-λ)·correct_A + λ·correct_B, so WA − Diag gets a paired bootstrap interval too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from tqdm.auto import tqdm

from warm import __version__
from warm.data.formats import PreferenceData, load_preferences
from warm.data.tokenize import TokenizedPairs, tokenize_pairs
from warm.errors import WarmError
from warm.metrics import accuracy_summary, correlation, paired_bootstrap_diff, pairwise_correct, subset_masks
from warm.evaluate.pairwise import ALPHA, corrupted_mask
from warm.fileio import write_json
from warm.merge.checks import check_lineage, check_tensors
from warm.merge.methods import linear
from warm.merge.tensor_io import CheckpointReader
from warm.models.loading import load_encoder, resolve_model_path
from warm.models.runtime import default_device, resolve_precision
from warm.score.scorer import RewardModelScorer
from warm.rundir import timestamp

DEFAULT_LAMBDAS = tuple(i / 10 for i in range(11))


def check_lambdas(lambdas: Sequence[float]) -> list[float]:
    """Sorted unique λ in [0, 1], with 0 and 1 added (Diag and ENS need both end models)."""
    values = {float(lam) for lam in lambdas}
    for lam in values:
        if not (math.isfinite(lam) and 0.0 <= lam <= 1.0):
            raise WarmError(f"lambda {lam}: must lie in [0, 1] (0 is model A, 1 is model B)")
    return sorted(values | {0.0, 1.0})


def _local_dirs(model_a: str, model_b: str) -> list[str]:
    """Both models as local directories: interpolation reads their safetensors weights, never the hub."""
    paths = [resolve_model_path(str(model_a)), resolve_model_path(str(model_b))]
    for given, path in zip((model_a, model_b), paths):
        if not Path(path).is_dir():
            raise WarmError(f"{given}: not a local model directory (LMC reads the weights' safetensors files)")
    return paths


def iter_interpolated(
    reader_a: CheckpointReader, reader_b: CheckpointReader, lam: float
) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, (1-λ)·a + λ·b) tensor by tensor, after checking names, shapes and dtypes from the headers."""
    lam = float(lam)
    check_lambdas([lam])
    for name in check_tensors([reader_a, reader_b]):
        a, b = reader_a.get(name), reader_b.get(name)
        # linear() is anchored at its first tensor; anchoring at the nearer end makes λ=0 and λ=1 exact.
        tensors, weights = ([a, b], [1.0 - lam, lam]) if lam <= 0.5 else ([b, a], [lam, 1.0 - lam])
        try:
            yield name, linear(tensors, weights)
        except WarmError as exc:
            raise WarmError(f"{name}: {exc}") from None


def interpolated_state(
    reader_a: CheckpointReader, reader_b: CheckpointReader, lam: float
) -> dict[str, torch.Tensor]:
    """The state dict of θ(λ) = (1-λ)·θ_A + λ·θ_B (λ = 0 is A and λ = 1 is B, bit for bit)."""
    return dict(iter_interpolated(reader_a, reader_b, lam))


def weight_distances(reader_a: CheckpointReader, reader_b: CheckpointReader) -> dict[str, float | int]:
    """L2 distances between θ_A, θ_B and their midpoint (weight-space diversity), streamed tensor by tensor."""
    sums = dict.fromkeys(("l2_a_b", "l2_a_mid", "l2_b_mid", "norm_a", "norm_b"), 0.0)
    n_params = 0
    for name in check_tensors([reader_a, reader_b]):
        a, b = reader_a.get(name), reader_b.get(name)
        if not a.is_floating_point():
            continue  # integer buffers are equal (linear() refuses them otherwise) and carry no weight
        mid = linear([a, b], [0.5, 0.5]).double()
        a, b = a.double(), b.double()
        pieces = {"l2_a_b": a - b, "l2_a_mid": a - mid, "l2_b_mid": b - mid, "norm_a": a, "norm_b": b}
        for key, tensor in pieces.items():
            sums[key] += float(tensor.square().sum())
        n_params += a.numel()
    return {**{key: math.sqrt(value) for key, value in sums.items()}, "n_params": n_params}


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy `state` into `model`; refuse names the model lacks or parameters the state leaves untouched
    (tied copies of a loaded tensor excepted), which would silently keep A's value at every λ."""
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise WarmError(f"{source}: tensor {result.unexpected_keys[0]} is not a parameter of the loaded model")
    params = model.state_dict()
    loaded = {params[name].data_ptr() for name in state if name in params}
    untouched = [name for name in result.missing_keys if params[name].data_ptr() not in loaded]
    if untouched:
        raise WarmError(f"{source}: model parameter {untouched[0]} has no tensor in the checkpoint")


def lmc_curves(
    model_a: str,
    model_b: str,
    splits: dict[str, PreferenceData],
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    *,
    max_length: int | None = None,
    batch_size: int = 32,
    precision: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    return_scores: bool = False,
    device: str | None = None,
):
    """LMC curves of A → B on each split (schema in the module docstring). With `return_scores`, also
    {split: {λ: {"chosen": rewards [n_pairs], "rejected": rewards [n_pairs]}}} of WA(λ), kept out of the dict."""
    lams = check_lambdas(lambdas)
    if not splits:
        raise WarmError("no splits to evaluate on")
    corrupted = {name: corrupted_mask(name, data) for name, data in splits.items()}
    paths = _local_dirs(model_a, model_b)
    readers = [CheckpointReader(p) for p in paths]
    try:
        check_tensors(readers)  # before any model is loaded: a mismatch names the tensor
        fingerprints, common = check_lineage([Path(p) for p in paths], allow_mixed_init=True)  # warns only
        encoders = [load_encoder(p, max_length=max_length) for p in paths]
        if encoders[0].signature != encoders[1].signature:
            raise WarmError(f"{model_b}: reads its inputs differently from {model_a} (tokenizer or input contract); "
                            "interpolating them is not meaningful")
        tokenized = {name: tokenize_pairs(encoders[0], d) for name, d in splits.items()}
        used_precision = resolve_precision(precision, device or default_device())
        options = dict(batch_size=batch_size, max_length=max_length, device=device, precision=used_precision)
        seq: dict[float, dict[str, np.ndarray]] = {}  # λ -> split -> rewards of its unique sequences

        def score_all(scorer: RewardModelScorer, lam: float) -> None:
            seq[lam] = {split: scorer.score_sequences(p.sequences, progress=progress, desc=f"λ={lam:g} · {split}")
                        for split, p in tokenized.items()}

        score_all(RewardModelScorer(paths[1], **options), 1.0)  # B as itself; then only A's model is kept
        scorer = RewardModelScorer(paths[0], **options)
        score_all(scorer, 0.0)
        for lam in tqdm(lams[1:-1], desc="interpolating", unit="λ", disable=not progress):
            load_weights(scorer.model, interpolated_state(readers[0], readers[1], lam), paths[0])
            score_all(scorer, lam)
        del scorer
        weights = weight_distances(*readers)
    finally:
        for reader in readers:
            reader.close()

    config = {"model_a": str(model_a), "model_b": str(model_b), "lambdas": lams,
              "max_length": encoders[0].max_length, "contract": encoders[0].contract.to_json(),
              "batch_size": batch_size, "precision": used_precision, "n_boot": n_boot, "seed": seed, "alpha": ALPHA,
              "init_fingerprints": fingerprints, "shared_init": common is not None}
    result: dict[str, Any] = {"config": config, "weights": weights, "splits": {}}
    scores: dict[str, dict[float, dict[str, np.ndarray]]] = {}
    for split, data in splits.items():
        pairs = tokenized[split]
        scores[split] = {lam: {"chosen": seq[lam][split][pairs.chosen_index].astype(np.float64),
                               "rejected": seq[lam][split][pairs.rejected_index].astype(np.float64)} for lam in lams}
        result["splits"][split] = _split_curves(data, pairs, corrupted[split], seq[0.0][split], seq[1.0][split],
                                                scores[split], n_boot=n_boot, seed=seed)
    return (result, scores) if return_scores else result


def _split_curves(data: PreferenceData, pairs: TokenizedPairs, corrupted: np.ndarray | None, seq_a: np.ndarray,
                  seq_b: np.ndarray, scores: dict[float, dict[str, np.ndarray]], *, n_boot: int, seed: int) -> dict:
    def curve(wa: np.ndarray, ens: np.ndarray, diag: np.ndarray) -> dict:
        summary = dict(n_boot=n_boot, seed=seed, alpha=ALPHA)
        return {"wa": accuracy_summary(wa, **summary), "ens": accuracy_summary(ens, **summary),
                "diag": float(diag.mean()) if diag.size else None,
                "wa_minus_diag": paired_bootstrap_diff(wa, diag, **summary),
                "wa_minus_ens": paired_bootstrap_diff(wa, ens, **summary)}

    def subset(wa: np.ndarray, ens: np.ndarray, diag: np.ndarray) -> dict:
        mean = lambda v: float(v.mean()) if v.size else None  # noqa: E731
        return {"wa": mean(wa), "ens": mean(ens), "diag": mean(diag), "n": int(wa.size)}

    masks = subset_masks(data.chosen_texts(), data.rejected_texts(), corrupted)
    adversarial = masks["length_adversarial"]
    end_a, end_b = scores[0.0], scores[1.0]
    correct_a = pairwise_correct(end_a["chosen"], end_a["rejected"])
    correct_b = pairwise_correct(end_b["chosen"], end_b["rejected"])
    points = []
    for lam, wa_scores in scores.items():
        ens_chosen = (1 - lam) * end_a["chosen"] + lam * end_b["chosen"]  # ENS(λ): exact r_A at λ = 0
        ens_rejected = (1 - lam) * end_a["rejected"] + lam * end_b["rejected"]
        wa = pairwise_correct(wa_scores["chosen"], wa_scores["rejected"])
        ens = pairwise_correct(ens_chosen, ens_rejected)
        diag = (1 - lam) * correct_a + lam * correct_b
        agree = np.sign(wa_scores["chosen"] - wa_scores["rejected"]) == np.sign(ens_chosen - ens_rejected)
        point = {"lambda": lam, **curve(wa, ens, diag), "agreement": float(agree.mean()),
                 "length_adversarial": curve(wa[adversarial], ens[adversarial], diag[adversarial])}
        for name in ("corrupted", "clean"):
            if name in masks:
                point[name] = subset(wa[masks[name]], ens[masks[name]], diag[masks[name]])
        points.append(point)
    return {"source": getattr(data, "source", None), "n_pairs": pairs.n_pairs, "n_sequences": len(pairs.sequences),
            "n_truncated": pairs.truncated, "n_length_adversarial": int(adversarial.sum()),
            "n_corrupted": None if corrupted is None else int(corrupted.sum()),
            "reward_correlation": correlation(seq_a, seq_b), "curves": points}


def run_lmc(model_a: str, model_b: str, split_files: dict[str, str], out_dir: str | Path,
            lambdas: Sequence[float] = DEFAULT_LAMBDAS, *, max_length: int | None = None, batch_size: int = 32,
            limit: int | None = None, n_boot: int = 1000, seed: int = 0, precision: str = "auto",
            progress: bool = True) -> dict:
    """`warm lmc` from files to files: OUT_DIR/lmc.json and OUT_DIR/lmc.png, and a table printed. Returns the dict."""
    from warm.report.figures import plot_lmc  # matplotlib only when a figure is drawn

    if not split_files:
        raise WarmError("no splits: give --data NAME=FILE")
    check_lambdas(lambdas)  # user errors before any file is read
    _local_dirs(model_a, model_b)  # user errors before any file is read
    splits = {name: load_preferences(path, limit=limit) for name, path in split_files.items()}
    start = time.perf_counter()
    lmc = lmc_curves(model_a, model_b, splits, lambdas, max_length=max_length, batch_size=batch_size,
                     precision=precision, n_boot=n_boot, seed=seed, progress=progress)
    lmc["config"].update({"split_files": split_files, "limit": limit, "warm_version": __version__,
                          "wall_seconds": time.perf_counter() - start, "created": timestamp()})
    out_dir = Path(out_dir)
    write_json(out_dir / "lmc.json", lmc)
    plot_lmc(lmc, out_dir / "lmc.png")
    print_lmc(lmc)
    return lmc


def _pct(value: float | None, lo: float | None = None, hi: float | None = None, signed: bool = False) -> str:
    """A fraction in percent, with its interval when given; differences get a sign."""
    if value is None:
        return "–"
    fmt = "{:+.1f}" if signed else "{:.1f}"
    text = fmt.format(100 * value)
    if lo is None or hi is None:
        return text
    return f"{text} [{fmt.format(100 * lo)}, {fmt.format(100 * hi)}]"


def lmc_table(lmc: dict[str, Any]) -> Table:
    """Rich table: per split and λ, WA [CI], ENS, Diag, WA−Diag [paired CI], WA−ENS, WA/ENS agreement (%);
    the JSON has every interval."""
    w = lmc["weights"]
    relative = w["l2_a_b"] / max(w["norm_a"], 1e-30)
    table = Table(title=f"LMC, accuracy % [95% CI]; ‖θ_A−θ_B‖ = {w['l2_a_b']:.4g} ({relative:.2%} of ‖θ_A‖)")
    for i, header in enumerate(["split", "λ", "WA", "ENS", "Diag", "WA−Diag", "WA−ENS", "agree"]):
        table.add_column(header, justify="left" if i == 0 else "right", overflow="fold")
    for split, entry in lmc["splits"].items():
        corr = entry["reward_correlation"]
        labels = [split, f"n={entry['n_pairs']}", f"ρ(r_A,r_B)={'–' if corr is None else f'{corr:.3f}'}"]
        for i, p in enumerate(entry["curves"]):
            d, e, wa = p["wa_minus_diag"], p["wa_minus_ens"], p["wa"]
            table.add_row(labels[i] if i < len(labels) else "", f"{p['lambda']:g}",
                          _pct(wa["accuracy"], wa["lo"], wa["hi"]), _pct(p["ens"]["accuracy"]), _pct(p["diag"]),
                          _pct(d["diff"], d["lo"], d["hi"], signed=True), _pct(e["diff"], signed=True),
                          _pct(p["agreement"]), end_section=i == len(entry["curves"]) - 1)
    return table


def print_lmc(lmc: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(lmc_table(lmc))
