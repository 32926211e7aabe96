"""The run-directory contract: the names of warm's files, where each command writes, and how an output that already
holds a run is claimed (the same settings, or a one-line refusal; --force starts again).

Every stage reads and writes through these names (DESIGN: "stages talk through files"), so a layout or a metadata
name changes here once. warm's own metadata sits in `warm_*.json` files beside the weights, never inside
config.json, so other tools load the directories as they are.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from warm.errors import WarmError

# Metadata a model directory carries beside its weights.
INIT_FILE = "warm_init.json"  # `warm init`: fingerprint, head seed, probe metrics
MEMBER_FILE = "warm_member.json"  # `warm train`: plan entry, init fingerprint, metrics (written last)
MERGE_FILE = "warm_merge.json"  # `warm merge`: members, weights, lineage
REGRESS_FILE = "warm_regress.json"  # pointwise regression (the RL benchmark's control)
SFT_FILE = "warm_sft.json"  # `warm sft` checkpoints
RL_POLICY_FILE = "warm_rl.json"  # `warm rl`'s trained policy
CONTRACT_FILE = "warm_contract.json"  # the input contract (warm.data.contract), in every reward-model directory
REWARD_MODEL_FILES = (INIT_FILE, MEMBER_FILE, MERGE_FILE, REGRESS_FILE)  # a directory with one was made by warm


def timestamp() -> str:
    """Now, as every warm file records it: ISO 8601 in UTC, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class TrainRun:
    """`warm train`'s run directory (the README's "run directory")."""

    root: Path

    @classmethod
    def of_member(cls, member_dir: str | Path) -> TrainRun:
        """The run a member directory (RUN/members/NAME) belongs to."""
        return cls(Path(member_dir).parent.parent)

    @property
    def init(self) -> Path:
        return self.root / "init"

    @property
    def config_file(self) -> Path:
        return self.root / "train_config.json"

    @property
    def plan_file(self) -> Path:
        return self.root / "plan.json"

    @property
    def data_file(self) -> Path:
        """The pairs actually trained on (after --limit and --corrupt)."""
        return self.root / "data" / "train.jsonl.gz"

    @property
    def corruption_file(self) -> Path:
        return self.root / "data" / "corruption.json"

    @property
    def members_dir(self) -> Path:
        return self.root / "members"

    def member(self, name: str) -> Path:
        return self.members_dir / name

    @property
    def metrics_file(self) -> Path:
        return self.root / "train_metrics.json"

    @property
    def warm(self) -> Path:
        return self.root / "warm"

    @property
    def eval_metrics(self) -> Path:
        return self.root / "eval" / "metrics.json"


@dataclass(frozen=True)
class RLRun:
    """`warm rl`'s output directory."""

    root: Path

    @property
    def config_file(self) -> Path:  # written first: the options and what they resolved to
        return self.root / "rl_config.json"

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def eval_file(self) -> Path:
        return self.root / "eval.jsonl"

    @property
    def eval_samples_file(self) -> Path:
        return self.root / "eval_samples.jsonl"

    @property
    def train_log_file(self) -> Path:
        return self.root / "train_log.jsonl"

    @property
    def monitor_file(self) -> Path:  # the reward-hacking monitor's probes (warm.apply.rl.monitor)
        return self.root / "monitor.jsonl"

    def policy(self) -> Path:
        """The policy the run stands for: its final/ directory, once there is one."""
        return self.final


@dataclass(frozen=True)
class GenerateRun:
    """`warm generate`'s output directory."""

    root: Path

    @property
    def samples_file(self) -> Path:
        return self.root / "samples.jsonl"

    @property
    def config_file(self) -> Path:
        return self.root / "generate.json"


@dataclass(frozen=True)
class SFTRun:
    """`warm sft`'s run directory: one HF checkpoint per save step (the Baklava variant's inits)."""

    root: Path

    def checkpoint(self, step: int) -> Path:
        return self.root / f"step-{step:06d}"

    @property
    def summary_file(self) -> Path:
        return self.root / "sft.json"


def changed_settings(old: dict, new: dict, unchecked: tuple[str, ...] = ()) -> list[str]:
    """"key=old, not new" for each setting of the run on disk that this one changes. A setting the old run does not
    record is not compared: it came with a later warm, and the old run goes on as it was."""
    keys = sorted(set(old) - set(unchecked))
    return [f"{key}={old.get(key)!r}, not {new.get(key)!r}" for key in keys if old.get(key) != new.get(key)]


def refuse_changed(where: str | Path, changes: list[str], made: str = "was made with",
                   advice: str = "pass --force to start again") -> None:
    """The one refusal for an output that holds a run made with other settings: `WHERE: MADE CHANGES (ADVICE)`."""
    if changes:
        shown = ", ".join(changes[:4]) + (f" (and {len(changes) - 4} more)" if len(changes) > 4 else "")
        raise WarmError(f"{where}: {made} {shown} ({advice})")
