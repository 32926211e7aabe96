"""Label corruption: swap chosen and rejected on a seeded fraction of pairs.

The WARM paper (Ramé et al. 2024, Section 5, Figure 8) flips 25% of the training labels to show that weight
averaging memorises corrupted labels less than each member or an ensemble does. Corruption is recorded per pair
(`PreferenceData.corrupted`) so evaluation can split accuracy into clean and corrupted pairs.
"""

from __future__ import annotations

import numpy as np

from warm.data.formats import PreferenceData
from warm.errors import WarmError


def corrupt_labels(data: PreferenceData, fraction: float, seed: int) -> PreferenceData:
    """Swap chosen/rejected on exactly `round(fraction * n)` pairs, the first ones of a seeded permutation.

    Deterministic for (n, fraction, seed); a larger fraction with the same seed corrupts a superset of pairs.
    Margins keep their value: a margin says how strongly the two answers differ, which a swap does not change
    (the swapped label is simply wrong with that strength, as a mistaken annotator's would be).
    Already-corrupted data is refused: corrupting twice could swap a pair back and blur the record.
    """
    if not 0.0 <= fraction <= 1.0:
        raise WarmError(f"corruption fraction must be in [0, 1], got {fraction}")
    if data.corrupted is not None and any(data.corrupted):
        raise WarmError(f"{data.source}: already has corrupted labels; corrupt the clean data instead")
    n = len(data)
    chosen_for_swap = np.random.default_rng(seed).permutation(n)[: round(fraction * n)]
    swapped = np.zeros(n, dtype=bool)
    swapped[chosen_for_swap] = True
    chosen = [r if s else c for c, r, s in zip(data.chosen, data.rejected, swapped)]
    rejected = [c if s else r for c, r, s in zip(data.chosen, data.rejected, swapped)]
    return PreferenceData(
        data.source,
        list(data.prompt),
        chosen,
        rejected,
        None if data.margin is None else list(data.margin),
        swapped.tolist(),
        {"fraction": float(fraction), "seed": int(seed)},
    )


def corruption_record(data: PreferenceData) -> dict:
    """What was corrupted, for a JSON file beside the run: fraction, seed, n_pairs, n_corrupted, indices.

    For data loaded from a file with a `corrupted` column the draw is unknown: seed is None and fraction is the
    observed share of corrupted pairs.
    """
    flags = data.corrupted or [False] * len(data)
    indices = [i for i, flag in enumerate(flags) if flag]
    drawn = data.corruption or {}
    return {
        "fraction": drawn.get("fraction", len(indices) / len(data) if len(data) else 0.0),
        "seed": drawn.get("seed"),
        "n_pairs": len(data),
        "n_corrupted": len(indices),
        "indices": indices,
    }
