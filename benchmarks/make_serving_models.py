"""Build the models the serving benchmark needs, without training: one init, M perturbed copies, their WARM merge.

    python benchmarks/make_serving_models.py --out runs/bench-serve --members 6

writes runs/bench-serve/{init, members/m00..m05, warm} (runs/ is git-ignored). Serving cost depends on the
architecture and sequence lengths, not on what the weights learned, so members are the shared init (the packaged
MiniLM with one seeded reward head, `warm init`) plus seeded Gaussian noise (`--noise` times each tensor's std),
and `warm`'s merge averages them exactly as it would trained members. Do not read their rewards as meaningful.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from warm.config import InitConfig
from warm.fileio import write_json
from warm.merge.merge import merge_models
from warm.rundir import INIT_FILE, MEMBER_FILE
from warm.models.init import init_fingerprint
from warm.train.init import build_init
from warm.models.loading import load_reward_model


def perturbed_member(init: Path, out: Path, seed: int, noise: float) -> None:
    """A copy of `init` whose floating-point weights get noise * std(tensor) * N(0, 1), drawn from `seed`."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(init, tmp)
    (tmp / INIT_FILE).unlink()  # a member is not the init; it names the init in warm_member.json instead
    model = load_reward_model(str(init))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.is_floating_point() and param.numel() > 1:
                param.add_(torch.randn(param.shape, generator=generator) * noise * param.std())
    model.save_pretrained(tmp, safe_serialization=True)
    write_json(tmp / MEMBER_FILE, {"init_fingerprint": init_fingerprint(init), "seed": seed, "noise": noise,
                                   "note": "benchmark member: the init plus seeded noise, not trained"})
    tmp.rename(out)


def build_serving_models(out: Path, count: int, noise: float, seed: int,
                         model: str | None = None) -> tuple[Path, list[Path], Path]:
    """(init, members, merge) under `out`: `warm init` of `model` (default: the packaged MiniLM), `count` perturbed
    copies, their uniform merge. Finished parts are kept and reused; the merge is rewritten."""
    init = out / "init"
    if not init.is_dir():
        options = {"model": model} if model else {}
        build_init(InitConfig(out=str(init), head_seed=seed, **options), progress=False)
    members = []
    for i in range(count):
        member = out / "members" / f"m{i:02d}"
        if not member.is_dir():  # resumable: finished members are kept
            member.parent.mkdir(parents=True, exist_ok=True)
            perturbed_member(init, member, seed + i, noise)
        members.append(member)
    merge_models(members, out / "warm", force=True, progress=False)
    return init, members, out / "warm"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/bench-serve", help="Output directory.")
    parser.add_argument("--members", type=int, default=6, help="Number of members M.")
    parser.add_argument("--noise", type=float, default=0.01, help="Noise scale, relative to each tensor's std.")
    parser.add_argument("--seed", type=int, default=0, help="Member i uses seed SEED + i; the head seed is SEED.")
    args = parser.parse_args(argv)
    out = Path(args.out)
    started = time.perf_counter()
    _, members, _ = build_serving_models(out, args.members, args.noise, args.seed)
    print(f"init, {len(members)} members and their merge under {out} ({time.perf_counter() - started:.0f} s)")
    print("specs:  single:", members[0], "  WARM:", out / "warm", "  ENS:", ",".join(map(str, members)))


if __name__ == "__main__":
    main()
