"""Eval tables render every scorer, split and the length baseline, in rich and markdown alike."""

from rich.console import Console

from warm.report.tables import eval_markdown, eval_rows, print_eval, render_eval_table

SUMMARY = {"accuracy": 0.75, "lo": 0.7, "hi": 0.8, "n": 100}
METRICS = {
    "config": {"scorers": {"warm": {"kind": "model"}, "ens": {"kind": "ensemble"}, "ens/m00": {"kind": "member"}}},
    "splits": {
        "test": {"n_pairs": 100, "n_length_adversarial": 30, "n_corrupted": 10, "length_baseline": SUMMARY,
                 "scorers": {name: {**SUMMARY, "length_adversarial": {**SUMMARY, "n": 30},
                                    "corrupted": {"accuracy": None, "lo": None, "hi": None, "n": 0}, "clean": SUMMARY}
                             for name in ("warm", "ens", "ens/m00")},
                 "comparisons": {"warm - ens": {"diff": 0.01, "lo": -0.02, "hi": 0.04},
                                 "warm - best member of ens": {"diff": 0.02, "lo": 0.0, "hi": 0.05, "best_member": "ens/m00"}}},
        "ood": {"n_pairs": 50, "n_length_adversarial": 5, "n_corrupted": None, "length_baseline": SUMMARY,
                "scorers": {name: {**SUMMARY, "length_adversarial": SUMMARY} for name in ("warm", "ens", "ens/m00")},
                "comparisons": {}},
    },
}


def test_rows_cover_scorers_and_splits():
    headers, rows = eval_rows(METRICS)
    assert headers == ["scorer", "test (n=100)", "test len-adv (n=30)", "test clean", "test corrupted (n=10)",
                       "ood (n=50)", "ood len-adv (n=5)"]
    assert [r[0] for r in rows] == ["length baseline", "warm", "ens", "ens/m00"]
    assert rows[1][1] == rows[1][2] == "75.0 [70.0, 80.0]" and rows[1][4] == "–"
    assert eval_rows(METRICS, subset_intervals=False)[1][1][1:3] == ["75.0 [70.0, 80.0]", "75.0"]


def test_rich_and_markdown():
    table = render_eval_table(METRICS)
    assert len(table.rows) == 4 and len(table.columns) == 7
    md = eval_markdown(METRICS)
    assert "| warm | 75.0 [70.0, 80.0]" in md and "warm - best member of ens (ens/m00) | 2.0 [0.0, 5.0]" in md
    console = Console(record=True, width=200)
    print_eval(METRICS, console=console)
    assert "paired differences" in console.export_text()
