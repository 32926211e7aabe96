"""Eval tables render every scorer, split and the length baseline, in rich and markdown alike."""

from rich.console import Console

from warm.report.tables import eval_markdown, eval_rows, print_eval, render_eval_table

def summary(accuracy: float, n: int = 100) -> dict:
    """A distinct summary per cell (interval ±0.05), so a swapped row or column shows."""
    return {"accuracy": accuracy, "lo": accuracy - 0.05, "hi": accuracy + 0.05, "n": n}


SCORERS = ("warm", "ens", "ens/m00")
# Accuracy of scorer i on split column j: 0.6 + 0.1 i + 0.01 j, so every cell differs.
METRICS = {
    "config": {"scorers": {"warm": {"kind": "model"}, "ens": {"kind": "ensemble"}, "ens/m00": {"kind": "member"}}},
    "splits": {
        "test": {"n_pairs": 100, "n_length_adversarial": 30, "n_corrupted": 10, "length_baseline": summary(0.55),
                 "scorers": {name: {**summary(0.6 + 0.1 * i), "length_adversarial": summary(0.61 + 0.1 * i, 30),
                                    "corrupted": {"accuracy": None, "lo": None, "hi": None, "n": 0},
                                    "clean": summary(0.62 + 0.1 * i)}
                             for i, name in enumerate(SCORERS)},
                 "comparisons": {"warm - ens": {"diff": 0.01, "lo": -0.02, "hi": 0.04},
                                 "warm - best member of ens": {"diff": 0.02, "lo": 0.0, "hi": 0.05, "best_member": "ens/m00"}}},
        "ood": {"n_pairs": 50, "n_length_adversarial": 5, "n_corrupted": None, "length_baseline": summary(0.5, 50),
                "scorers": {name: {**summary(0.63 + 0.1 * i, 50), "length_adversarial": summary(0.64 + 0.1 * i, 5)}
                            for i, name in enumerate(SCORERS)},
                "comparisons": {}},
    },
}


def test_rows_cover_scorers_and_splits():
    headers, rows = eval_rows(METRICS)
    assert headers == ["scorer", "test (n=100)", "test len-adv (n=30)", "test clean", "test corrupted (n=10)",
                       "ood (n=50)", "ood len-adv (n=5)"]
    assert [r[0] for r in rows] == ["length baseline", "warm", "ens", "ens/m00"]
    assert rows[1] == ["warm", "60.0 [55.0, 65.0]", "61.0 [56.0, 66.0]", "62.0 [57.0, 67.0]", "–",
                       "63.0 [58.0, 68.0]", "64.0 [59.0, 69.0]"]
    assert rows[3][1] == "80.0 [75.0, 85.0]" and rows[3][5] == "83.0 [78.0, 88.0]"
    assert rows[0][1] == "55.0 [50.0, 60.0]" and rows[0][5] == "50.0 [45.0, 55.0]"
    assert eval_rows(METRICS, subset_intervals=False)[1][1][1:3] == ["60.0 [55.0, 65.0]", "61.0"]


def test_rich_and_markdown():
    table = render_eval_table(METRICS)
    assert len(table.rows) == 4 and len(table.columns) == 7
    md = eval_markdown(METRICS)
    assert "| warm | 60.0 [55.0, 65.0] | 61.0 [56.0, 66.0] |" in md and "warm - best member of ens (ens/m00) | 2.0 [0.0, 5.0]" in md
    console = Console(record=True, width=200)
    print_eval(METRICS, console=console)
    assert "paired differences" in console.export_text()
