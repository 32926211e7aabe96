"""`make bench`: the rows (ratios per repeat, then min / median / max) and the markdown page, from the raw timings.

Every ratio is warm's figure divided by its peer's, both from the same repeat, so a busy moment of the shared
machine hits both sides. A goal is met when the median ratio is on the right side of it.
"""

from __future__ import annotations

import operator
import statistics

GOAL_OPS = {">=": operator.ge, "<=": operator.le}


def make_row(key: str, figure: str, warm: str, peer: str, unit: str, goal: tuple[str, float] | None,
             pairs: list[tuple[float, float]] | None, not_run: str | None = None, percent: bool = False) -> dict:
    """One table row; `pairs` is (warm, peer) per repeat. `not_run` (the reason) instead of numbers."""
    row = {"key": key, "figure": figure, "warm": warm, "peer": peer, "unit": unit,
           "goal": {"op": goal[0], "value": goal[1]} if goal else None, "percent": percent}
    if not_run is not None or not pairs:
        return {**row, "status": "not run", "reason": not_run or "no samples", "samples": [], "ratio": None,
                "warm_median": None, "peer_median": None, "met": None}
    samples = [{"repeat": i, "warm": w, "peer": p, "ratio": w / p} for i, (w, p) in enumerate(pairs)]
    ratios = [s["ratio"] for s in samples]
    median = statistics.median(ratios)
    return {**row, "status": "measured", "samples": samples,
            "ratio": {"min": min(ratios), "median": median, "max": max(ratios)},
            "warm_median": statistics.median(w for w, _ in pairs),
            "peer_median": statistics.median(p for _, p in pairs),
            "met": None if goal is None else bool(GOAL_OPS[goal[0]](median, goal[1]))}


def build_rows(raw: dict, settings: dict) -> list[dict]:
    """Every row of the issue's table, measured or "not run" with its reason, in a fixed order."""
    def skipped(section: str) -> str | None:
        return None if section in raw else f"section {section!r} not selected (--sections)"

    rows = []
    train = raw.get("train", {})
    for length in settings["lengths"]:
        part = train.get(str(length), {})
        goal = (">=", 1.5) if length == settings["train_goal_length"] else None
        rows.append(make_row(
            f"train_{length}", f"member training, pairs/s, max length {length}", "`warm train` (one member)",
            "plain TRL `RewardTrainer`", "pairs/s", goal,
            [(s["warm"]["pairs_per_second"], s["trl"]["pairs_per_second"]) for s in part.get("samples", [])],
            skipped("train")))
    for length in settings["lengths"]:
        part = train.get(str(length), {})
        rows.append(make_row(
            f"mfu_{length}", f"training efficiency (model FLOPs utilisation), max length {length}",
            "`warm train`: pairs/s x FLOPs per pair", "bf16 2048² GEMM, same run", "FLOP/s", (">=", 0.5),
            [(s["warm"]["pairs_per_second"] * part["flops_per_pair"], s["gemm_flops_per_second"])
             for s in part.get("samples", [])], skipped("train"), percent=True))
    score = raw.get("score", {})
    for length in settings["lengths"]:
        rows.append(make_row(
            f"score_{length}", f"scoring, sequences/s, max length {length}", "warm's scorer (`warm eval` path)",
            "plain transformers loop", "sequences/s", (">=", 1.5),
            [(s["warm"]["sequences_per_second"], s["transformers"]["sequences_per_second"])
             for s in score.get(str(length), {}).get("samples", [])], skipped("score")))
    serve = raw.get("serve", {})
    clients, members = settings["serve_clients"], settings["serve_members"]
    rows.append(make_row(
        "serve_overhead", f"serving overhead, items/s, {clients} closed-loop clients", "`warm serve` (HTTP), WARM",
        "the same scorer in process", "items/s", (">=", 0.85),
        [(s["http"]["items_per_second"], s["in_process"]["items_per_second"]) for s in serve.get("samples", [])],
        skipped("serve")))
    rows.append(make_row(
        "serve_warm_vs_ens", f"WARM vs ENS serving cost, items/s, M = {members}", f"`warm serve` WARM (M = {members})",
        f"`warm serve` ENS (M = {members})", "items/s", (">=", 5.5),
        [(s["http"]["items_per_second"], s["ens_http"]["items_per_second"]) for s in serve.get("samples", [])],
        skipped("serve")))
    merge = raw.get("merge", {})
    for count in settings["merge_members"]:
        part = merge.get("M", {}).get(str(count), {})
        samples = part.get("samples", [])
        no_mergekit = skipped("merge") or merge.get("mergekit")
        for key, figure, field, unit, goal in (("wall", "merge wall time", "wall_s", "s", 0.5),
                                               ("rss", "merge peak RSS", "peak_rss_MiB", "MiB", 0.25)):
            rows.append(make_row(
                f"merge_{key}_M{count}", f"{figure}, M = {count}, SmolLM2-135M fp32", "`warm merge` (CLI)",
                "mergekit `linear`", unit, ("<=", goal),
                [] if no_mergekit else [(s["warm"][field], s["mergekit"][field]) for s in samples], no_mergekit))
        rows.append(make_row(
            f"merge_io_M{count}", f"merge wall time against the I/O bound, M = {count}", "`warm merge` (CLI)",
            "I/O bound (cold reads + fsync'd write)", "s", ("<=", 2.0),
            [(s["warm"]["wall_s"], part["io_bound_s"]) for s in samples], skipped("merge")))
    return rows


# ---------------------------------------------------------------------------------------------------- markdown
def value(v: float | None, unit: str) -> str:
    if v is None:
        return "–"
    if unit == "FLOP/s":
        return f"{v / 1e9:.3g} GFLOP/s"
    return f"{v:.0f} {unit}" if unit == "MiB" else f"{v:.3g} {unit}"


def ratio_text(r: float, percent: bool) -> str:
    return f"{100 * r:.0f}%" if percent else f"{r:.2f}×"


def goal_label(row: dict) -> str:
    goal = row["goal"]
    if goal is None:
        return "–"
    return f"{'≥' if goal['op'] == '>=' else '≤'} {ratio_text(goal['value'], row['percent'])}"


TABLE_HEAD = ("| figure | warm | side by side with | warm (median) | peer (median) | ratio min / median / max | goal "
              "| met? |")


def markdown(result: dict, methods: list[str]) -> str:
    m, v, load = result["machine"], result["versions"], result["load_average"]
    lines = [
        "# `make bench`: warm side by side with its peers and with this machine's limits, in one run",
        "",
        "Written by `benchmarks/bench.py` (`make bench`): rerun it rather than editing this page. The raw timings of "
        "every repeat are in [bench.json](bench.json).",
        "",
        f"- **Command**: `{result['command']}`",
        f"- **Date**: {result['started']} to {result['finished']} (UTC)",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['mem_GiB']} GiB RAM, Linux {m['kernel']}, "
        f"{m['torch_threads']} torch threads. Load average (1/5/15 min) at the start "
        f"{'/'.join(f'{x:.1f}' for x in load['start'])}, at the end {'/'.join(f'{x:.1f}' for x in load['end'])}.",
        "- **Versions**: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- **Repeats**: {result['settings']['repeats']}; the order of the tools rotates on each repeat. Each ratio "
        "is warm ÷ peer within one repeat; the table gives min / median / max over the repeats, and a goal counts "
        "as met when the median meets it.",
        "",
        TABLE_HEAD,
        "|---|---|---|---:|---:|---:|---:|:---:|",
    ]
    for row in result["rows"]:
        goal_text = goal_label(row)
        if row["status"] != "measured":
            cells = [row["figure"], row["warm"], row["peer"], "–", "–", f"not run: {row['reason']}", goal_text,
                     "–"]
        else:
            r = row["ratio"]
            ratios = " / ".join(ratio_text(r[k], row["percent"]) for k in ("min", "median", "max"))
            met = "–" if row["met"] is None else ("yes" if row["met"] else "**no**")
            cells = [row["figure"], row["warm"], row["peer"], value(row["warm_median"], row["unit"]),
                     value(row["peer_median"], row["unit"]), ratios, goal_text, met]
        lines.append("| " + " | ".join(cells) + " |")
    if any(row.get("met") is False for row in result["rows"]):
        lines += ["", "Where a goal is missed, the profile and what is left are in [bench-misses.md](bench-misses.md) "
                  "(hand-written, dated: check that its figures match this run's)."]
    lines += ["", "## Checks", ""] + [f"- {check}" for check in result["checks"]]
    lines += ["", "## How each figure is measured", ""]
    for method in methods:
        lines += [method.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
