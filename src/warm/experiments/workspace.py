"""The experiments' shared workspace: everything expensive is computed once and cached by what it depends on.

runs/experiments/
  data/<hash>/          pool splits (train, val, test_id, test_ood) for one PoolData config
  inits/<hash>/         `warm init` outputs (base model, head seed; or a Baklava SFT checkpoint)
  members/<hash>/       one-member `warm train` runs, keyed by the hash of their TrainConfig (the plan's inputs)
  merged/<hash>/        weight averages, keyed by their members and weights
  control_models/<hash>/ pointwise regressors on logit(gold) (the RL benchmark's control reward)
  scores/<hash>.npy     a model's rewards for a split's unique sequences, keyed by weights, split and settings

So a member trained for one experiment (or one figure) is reused by every other that asks for the same member,
and a model scores a split once however many experiments evaluate it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from warm.config import InitConfig, TrainConfig, to_dict
from warm.data.alpacaeval import PoolSplitSpec, build_splits, read_pool, split_stats
from warm.data.formats import PreferenceData, load_preferences
from warm.data.sources import write_jsonl
from warm.experiments.config import ExperimentConfig
from warm.fileio import sha256_file, sha256_json, write_json
from warm.models.init import weights_fingerprint
from warm.train.init import build_init
from warm.train.regress import RegressSettings
from warm.rundir import CONTRACT_FILE, INIT_FILE, MEMBER_FILE, MERGE_FILE, REGRESS_FILE, TrainRun

SPLITS = ("train", "val", "test_id", "test_ood")


class Workspace:
    def __init__(self, root: str | Path, config: ExperimentConfig, progress: bool = True):
        self.root = Path(root)
        self.config = config
        self.progress = progress
        self._data: dict[str, Path] | None = None
        self._loaded: dict[str, PreferenceData] = {}
        self._digests: dict[tuple[str, Path], str] = {}

    # ---- data -------------------------------------------------------------------------------------------
    def data_files(self) -> dict[str, Path]:
        """The pool splits for this config, built once (train, val, test_id, test_ood)."""
        if self._data is not None:
            return self._data
        spec = to_dict(self.config.data)
        out = self.root / "data" / sha256_json(spec)[:16]
        if not (out / "stats.json").exists():
            d = self.config.data
            specs = [PoolSplitSpec("train", "train", "train", d.n_train, d.length_balanced_train),
                     PoolSplitSpec("val", "train", "val", d.n_val),
                     PoolSplitSpec("test_id", "train", "heldout", d.n_test),
                     PoolSplitSpec("test_ood", "ood", "heldout", d.n_test)]
            built = build_splits(read_pool(d.source), specs, seed=d.seed, heldout_fraction=d.heldout_fraction,
                                 val_fraction=d.val_fraction)
            stats = {"config": spec, "source_sha256": sha256_file(d.source), "splits": {}}
            for name in SPLITS:
                write_jsonl(out / f"{name}.jsonl.gz", built["splits"][name])
                stats["splits"][name] = split_stats(built["splits"][name])
            write_json(out / "stats.json", stats)
        self._data = {name: out / f"{name}.jsonl.gz" for name in SPLITS}
        return self._data

    def split(self, name: str, limit: int | None = None) -> PreferenceData:
        key = f"{name}:{limit}"
        if key not in self._loaded:
            source = self.data_files()[name] if name in SPLITS else Path(name)
            self._loaded[key] = load_preferences(str(source), limit=limit)
        return self._loaded[key]

    # ---- models -----------------------------------------------------------------------------------------
    def init(self, model: str | None = None, head_seed: int | None = None, probe_steps: int = 0,
             max_length: int | None = None) -> Path:
        """The shared init (cached); with `probe_steps`, its head linear-probed on the training split first (LP-init,
        at `max_length` tokens, the training length by default)."""
        t = self.config.training
        probe = {"linear_probe": str(self.data_files()["train"]), "probe_steps": probe_steps,
                 "probe_batch_size": t.batch_size, "max_length": max_length or t.max_length} if probe_steps else {}
        config = InitConfig(out="", model=model or t.model, head_seed=t.head_seed if head_seed is None else head_seed,
                            **probe)
        out = self.root / "inits" / sha256_json({**to_dict(config), "out": None})[:16]
        if not (out / INIT_FILE).exists() or not (out / CONTRACT_FILE).exists():  # inits before the contract: rebuilt
            build_init(dataclasses.replace(config, out=str(out), force=True), progress=self.progress)
        return out

    def member(self, init: Path, data: Path, lr: float, dropout: float, seed: int, *, epochs: float | None = None,
               corrupt: float = 0.0, corrupt_seed: int = 0, limit: int | None = None,
               checkpoints: tuple[float, ...] = (), max_length: int | None = None) -> Path:
        """One member, trained once: a one-member `warm train` run cached by the hash of its config."""
        from warm.train.launcher import run_training

        t = self.config.training
        config = TrainConfig(init=(str(init),), data=str(data), out="", members=1, lr=(lr,), dropout=(dropout,),
                             seed=seed, epochs=t.epochs if epochs is None else epochs, batch_size=t.batch_size,
                             max_length=max_length or t.max_length, warmup_ratio=t.warmup_ratio, precision=t.precision,
                             corrupt=corrupt, corrupt_seed=corrupt_seed, limit=limit, checkpoints=checkpoints)
        key = {**to_dict(config), "out": None, "data_sha256": sha256_file(data)}
        run = self.root / "members" / sha256_json(key)[:16]
        member_dir = TrainRun(run).member("m00")
        if not (member_dir / MEMBER_FILE).exists():
            run_training(dataclasses.replace(config, out=str(run)), progress=self.progress)
        return member_dir

    def member_checkpoints(self, init: Path, data: Path, lr: float, dropout: float, seed: int,
                           fraction: float = 0.5) -> tuple[Path, Path]:
        """(the member part-way through its run, the finished member): two checkpoints of ONE run."""
        member = self.member(init, data, lr, dropout, seed, checkpoints=(fraction,))
        (middle,) = sorted((member / "checkpoints").iterdir())
        return middle, member

    def sft_inits(self, steps: tuple[int, ...], lr: float = 5e-5) -> list[Path]:
        """Shared inits from checkpoints of ONE continued-LM run (`warm sft`) on the training split's text: the
        Baklava variant's starting points. Only training instructions are used, so test text stays unseen."""
        from warm.train.sft import checkpoint_dir, run_sft
        from warm.train.sft_config import SFTConfig

        t = self.config.training
        config = SFTConfig(out="", data=str(self.data_files()["train"]), save_steps=tuple(steps), model=t.model,
                           lr=lr, batch_size=t.batch_size, max_length=t.max_length, precision=t.precision)
        out = self.root / "sft" / sha256_json({**to_dict(config), "out": None,
                                                "data_sha256": sha256_file(self.data_files()["train"])})[:16]
        if not all((checkpoint_dir(out, step) / "warm_sft.json").exists() for step in steps):
            run_sft(dataclasses.replace(config, out=str(out)), progress=self.progress)
        return [self.init(model=str(checkpoint_dir(out, step))) for step in steps]

    def merged(self, members: list[Path], weights: list[float] | None = None) -> Path:
        from warm.merge.merge import merge_models

        key = {"members": [str(Path(m).resolve()) for m in members], "weights": weights}
        out = self.root / "merged" / sha256_json(key)[:16]
        if not (out / MERGE_FILE).exists():
            merge_models([str(m) for m in members], out, weights=weights, force=True, progress=False)
        return out

    def control(self, settings: RegressSettings) -> Path:
        """A reward model regressed on logit(gold) of EVERY pool output (both tiers) of the training and validation
        instructions, trained once: the control reward of the RL benchmark. Held-out instructions stay unseen."""
        from warm.data.alpacaeval import logit, split_instructions
        from warm.train.regress import fit_pointwise_reward

        d = self.config.data
        init = self.init()
        key = {"data": {"source_sha256": self.digest("file", Path(d.source)), "seed": d.seed,
                        "heldout_fraction": d.heldout_fraction, "val_fraction": d.val_fraction},
               "init": self.digest("weights", init), "settings": dataclasses.asdict(settings)}
        out = self.root / "control_models" / sha256_json(key)[:16]
        if not (out / REGRESS_FILE).exists():
            rows = read_pool(d.source)
            train, val, _ = split_instructions(rows, d.seed, d.heldout_fraction, d.val_fraction)
            keep = set(train) | set(val)
            rows = sorted((r for r in rows if r["instruction_id"] in keep),
                          key=lambda r: (r["instruction_id"], r["generator"]))
            fit_pointwise_reward(init, [r["instruction"] for r in rows], [r["output"] for r in rows],
                                 [logit(r["gold"]) for r in rows], out, settings, progress=self.progress, force=True)
        return out

    # ---- scores -----------------------------------------------------------------------------------------
    def pair_scores(self, model_dir: Path, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(chosen rewards, rejected rewards) of a model on a split, from the score cache when possible."""
        from warm.models.runtime import default_device, resolve_precision
        from warm.score.cache import cached_pair_rewards

        data = self.split(split, limit)
        precision = resolve_precision(self.config.training.precision, default_device())
        data_file = self.data_files()[split] if split in SPLITS else Path(split)
        return cached_pair_rewards(model_dir, data, self.root / "scores",
                                   weights_digest=self.digest("weights", Path(model_dir)),
                                   data_key={"split": split, "limit": limit, "data": self.digest("file", data_file)},
                                   precision=precision, progress=self.progress, desc=f"{Path(model_dir).name} · {split}")

    def digest(self, kind: str, path: Path) -> str:
        """Hashes of weights and data files, computed once per workspace: score look-ups repeat them often and a
        member's weights are tens of MB to read. Cached entries never go stale: every cached directory and
        file is immutable once written."""
        key = (kind, path.resolve())
        if key not in self._digests:
            self._digests[key] = weights_fingerprint(path) if kind == "weights" else sha256_file(path)
        return self._digests[key]

