"""The members' disagreement next to a WARM reward: an epistemic signal that costs M forward passes, paid on demand.

WARM (Ramé et al. 2024, arXiv 2401.12187) serves one weight-averaged model at the cost of one. Its members, still on
disk (listed in the merge's warm_merge.json), agree where their preference data reached and disagree where it did
not: a policy drifting where the reward model is wrong shows up as a rise of that disagreement before the reward
itself looks odd. `MemberUncertaintyScorer` scores with the WARM model alone (one forward pass) unless asked for the
members (`uncertainty`, or `score_members`): then each member scores the same inputs, by its own input contract.

Two numbers per item:
- `member_std`: the population std of the members' rewards (ddof=0, the convention of warm.score.reductions);
- `warm_minus_mean`: the WARM reward minus the members' mean. Weight averaging and prediction averaging agree to
  first order around the members (the paper's Sec. 3.3 and linear mode connectivity); where they part, the members'
  function is no longer close to linear between them, another sign of inputs the data did not cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from warm.errors import WarmError
from warm.fileio import read_json
from warm.models.loading import resolve_model_path
from warm.rundir import MERGE_FILE
from warm.score.scorer import EnsembleScorer, RewardModelScorer

if TYPE_CHECKING:
    from warm.data.formats import PreferenceData


@dataclass(frozen=True)
class Uncertainty:
    """The reward of N items and the M members' rewards of the same items."""

    reward: np.ndarray  # [N]
    members: np.ndarray  # [M, N]
    weights: np.ndarray | None = None  # the merge's weights of the members (None: equal)

    @property
    def member_mean(self) -> np.ndarray:
        # Weighted as in the merge, so that WARM minus this mean compares averages of the same members.
        return np.average(self.members, axis=0, weights=self.weights)

    @property
    def member_std(self) -> np.ndarray:
        return np.sqrt(np.average((self.members - self.member_mean) ** 2, axis=0, weights=self.weights))

    @property
    def warm_minus_mean(self) -> np.ndarray:
        return self.reward - self.member_mean

    def to_json(self) -> dict:
        return {"reward": self.reward.tolist(), "member_std": self.member_std.tolist(),
                "warm_minus_mean": self.warm_minus_mean.tolist(), "members": self.members.tolist()}


def merge_members(warm_dir: str) -> tuple[list[str], list[float] | None]:
    """(member directories, their weights) a WARM merge records in its warm_merge.json; each member must be on
    disk. Weights are None when the record has none that fit."""
    merge_file = Path(resolve_model_path(str(warm_dir))) / MERGE_FILE
    if not merge_file.is_file():
        raise WarmError(f"{warm_dir}: no {MERGE_FILE}, so no members to disagree (made by `warm merge`?)")
    record = read_json(merge_file)
    members = record.get("members") if isinstance(record, dict) else None
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise WarmError(f"{merge_file}: field 'members' is not a non-empty list of directories")
    for i, member in enumerate(members):
        if not Path(member).is_dir():
            raise WarmError(f"{merge_file}: members[{i}] {member} is not a directory (moved or deleted since the "
                            "merge?)")
    weights = record.get("weights")
    fits = isinstance(weights, list) and len(weights) == len(members) and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights) and sum(weights) > 0
    return members, [float(w) for w in weights] if fits else None


def members_scorer(spec: str, **scorer_kwargs) -> EnsembleScorer:
    """The members behind a scorer spec, as one mean ensemble: an ensemble spec's own members, or the members a
    WARM merge directory lists in warm_merge.json, with the merge's weights as `weights` (None: equal)."""
    from warm.score.spec import describe_spec

    info = describe_spec(spec)
    paths, weights = (info["members"], None) if info["kind"] == "ensemble" else merge_members(info["members"][0])
    scorer = EnsembleScorer(paths, reduction="mean", **scorer_kwargs)
    scorer.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    return scorer


def member_rows(members, prompts: Sequence, responses: Sequence) -> np.ndarray:
    """[M, N] float64 rewards of anything with `score_members(prompts, responses)` (an ensemble, this module's
    scorer, a constructed stand-in in tests); its `weights`, if it has them, weight the members' mean and std."""
    rows = np.asarray(members.score_members(list(prompts), list(responses)), dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(prompts):
        raise WarmError(f"members: expected [members, {len(prompts)}] rewards, got shape {rows.shape}")
    return rows


class MemberUncertaintyScorer:
    """A WARM model and its members: `score_texts` is the WARM reward (one forward pass per item); `uncertainty`
    adds the members' rewards (M more). A warm Scorer, so it goes wherever one model does.

    `members` overrides the directories read from warm_merge.json (members moved since the merge; equal weights).
    """

    def __init__(self, warm_dir: str, members: Sequence[str] | None = None, **scorer_kwargs) -> None:
        self.path = str(warm_dir)
        paths, weights = (list(members), None) if members is not None else merge_members(self.path)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.warm = RewardModelScorer(self.path, **scorer_kwargs)
        self.ensemble = EnsembleScorer(paths, reduction="mean", **scorer_kwargs)
        self.members = self.ensemble.members
        self.name = self.warm.name
        self.max_length = self.warm.max_length

    def __repr__(self) -> str:
        return f"MemberUncertaintyScorer({self.path!r}, members={self.ensemble.paths!r})"

    def score_texts(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> np.ndarray:
        return self.warm.score_texts(prompts, responses, progress=progress)

    def score_members(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> np.ndarray:
        """[M, N]: the members' rewards (not the WARM model's)."""
        return self.ensemble.score_members(prompts, responses, progress=progress)

    def score_data(self, data: PreferenceData, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        return self.warm.score_data(data, progress=progress)

    def uncertainty(self, prompts: Sequence, responses: Sequence, progress: bool = False) -> Uncertainty:
        """The WARM reward and the members' rewards of each (prompt, response): 1 + M forward passes per item."""
        return Uncertainty(self.score_texts(prompts, responses, progress).astype(np.float64),
                           self.score_members(prompts, responses, progress).astype(np.float64), self.weights)


def calibrate_disagreement(members, data: PreferenceData, quantile: float) -> float:
    """The `quantile` of the members' std over both responses of held-out preference pairs: how much the members
    disagree where their data reached. The monitor (warm.apply.rl.monitor) counts probe items beyond it."""
    if not 0 < quantile < 1:
        raise WarmError(f"disagreement quantile must be in (0, 1), got {quantile}")
    rows = member_rows(members, list(data.prompt) * 2, list(data.chosen) + list(data.rejected))
    if rows.shape[0] < 2:
        raise WarmError(f"{data.source}: one member cannot disagree with itself; calibrate with two or more")
    spread = Uncertainty(np.zeros(rows.shape[1]), rows, getattr(members, "weights", None)).member_std
    return float(np.quantile(spread, quantile))
