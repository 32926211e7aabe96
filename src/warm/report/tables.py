"""Tables of `warm eval` metrics (warm.evaluate.pairwise schema): rich for the terminal, markdown for reports.

Both renderings come from one list of rows (`eval_rows`), so the terminal and the report never disagree.
Accuracies are shown in percent with their 95% bootstrap interval; the length baseline ("the longer response
wins") is always a row, since an accuracy means little without it (shared/README.md).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

LENGTH_BASELINE = "length baseline"  # "the longer response wins"


def _fmt(summary: dict | None, key: str = "accuracy", interval: bool = True) -> str:
    if not summary or summary.get(key) is None:
        return "–"
    if not interval:
        return f"{100 * summary[key]:.1f}"
    return f"{100 * summary[key]:.1f} [{100 * summary['lo']:.1f}, {100 * summary['hi']:.1f}]"


def eval_rows(metrics: dict[str, Any], subset_intervals: bool = True) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per scorer plus the length baseline; per split: accuracy, length-adversarial
    accuracy, and, where the split has corrupted labels, clean and corrupted accuracy. Without `subset_intervals`
    the subset columns show the accuracy alone (the terminal table, which must fit a terminal's width)."""
    splits = metrics["splits"]
    headers = ["scorer"]
    columns: list[tuple[str, str | None]] = []  # (split, subset or None for all pairs)
    for split, m in splits.items():
        headers.append(f"{split} (n={m['n_pairs']})")
        columns.append((split, None))
        headers.append(f"{split} len-adv (n={m['n_length_adversarial']})")
        columns.append((split, "length_adversarial"))
        if m.get("n_corrupted") is not None:
            headers += [f"{split} clean", f"{split} corrupted (n={m['n_corrupted']})"]
            columns += [(split, "clean"), (split, "corrupted")]
    rows = [[LENGTH_BASELINE] + [_fmt(splits[s]["length_baseline"]) if sub is None else "–" for s, sub in columns]]
    names = list(metrics.get("config", {}).get("scorers", {})) or list(next(iter(splits.values()))["scorers"])
    for name in names:
        cells = []
        for split, subset in columns:
            entry = splits[split]["scorers"].get(name)
            if subset is None:
                cells.append(_fmt(entry))
            else:
                cells.append(_fmt(entry.get(subset) if entry else None, interval=subset_intervals))
        rows.append([name] + cells)
    return headers, rows


def comparison_rows(metrics: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the paired comparisons: accuracy difference in points with its interval."""
    headers = ["split", "comparison", "diff [95% CI]"]
    rows = []
    for split, m in metrics["splits"].items():
        for label, diff in m.get("comparisons", {}).items():
            if "best_member" in diff:
                label = f"{label} ({diff['best_member']})"
            rows.append([split, label, _fmt(diff, "diff")])
    return headers, rows


def render_eval_table(metrics: dict[str, Any]) -> Table:
    """Rich table: rows are scorers (and the length baseline), columns are splits; cells are "acc [lo, hi]" in %
    (subset columns: accuracy only; the intervals are in the metrics and in `eval_markdown`)."""
    headers, rows = eval_rows(metrics, subset_intervals=False)
    table = Table(title="pairwise accuracy, % [95% bootstrap CI]")
    for i, header in enumerate(headers):
        # fold rather than truncate with an ellipsis: a narrow terminal must not hide digits of an interval
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*row, style="dim" if row[0] == LENGTH_BASELINE else None)
    return table


def render_comparison_table(metrics: dict[str, Any]) -> Table | None:
    headers, rows = comparison_rows(metrics)
    if not rows:
        return None
    table = Table(title="paired differences, accuracy points [95% bootstrap CI]")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    return table


def print_eval(metrics: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(render_eval_table(metrics))
    comparisons = render_comparison_table(metrics)
    if comparisons is not None:
        console.print(comparisons)


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def _markdown(headers: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A markdown table; the first `text_columns` columns are left-aligned, the numbers right-aligned."""
    align = [" --- "] * text_columns + [" ---: "] * (len(headers) - text_columns)
    lines = ["| " + " | ".join(map(_escape, headers)) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(map(_escape, row)) + " |" for row in rows]
    return "\n".join(lines)


def eval_markdown(metrics: dict[str, Any]) -> str:
    """The same tables in markdown (accuracy, then paired comparisons when there are any)."""
    parts = ["Pairwise accuracy, % [95% bootstrap CI]", "", _markdown(*eval_rows(metrics))]
    headers, rows = comparison_rows(metrics)
    if rows:
        parts += ["", "Paired differences, accuracy points [95% bootstrap CI]", "", _markdown(headers, rows, text_columns=2)]
    return "\n".join(parts) + "\n"
