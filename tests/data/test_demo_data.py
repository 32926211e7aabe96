"""The bundled demo data: three splits that load, with disjoint instructions and recorded statistics."""

from __future__ import annotations

import gzip
import json

import pytest

from warm.data.demo import DEMO_SPLITS, demo_path
from warm.data.formats import load_preferences
from warm.errors import WarmError


def read_rows(split: str) -> list[dict]:
    with gzip.open(demo_path(split), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return {split: read_rows(split) for split in DEMO_SPLITS}


@pytest.fixture(scope="module")
def stats() -> dict:
    return json.loads((demo_path("train").parent / "stats.json").read_text())


def test_three_splits_load_as_preferences(rows):
    for split in DEMO_SPLITS:
        data = load_preferences(demo_path(split))
        assert len(data) == len(rows[split]) > 0
        assert data.prompt[0] == rows[split][0]["prompt"] and data.chosen[-1] == rows[split][-1]["chosen"]
        assert data.margin is None and data.corrupted is None


def test_labels_follow_the_gold_scores(rows):
    for split_rows in rows.values():
        assert all(r["chosen_gold"] > r["rejected_gold"] for r in split_rows)
        assert all(r["chosen_generator"] != r["rejected_generator"] for r in split_rows)


def test_test_instructions_are_held_out_and_tiers_disjoint(rows, stats):
    train_ids = {r["instruction_id"] for r in rows["train"]}
    for split in ("test_id", "test_ood"):
        assert not train_ids & {r["instruction_id"] for r in rows[split]}
    generators = {split: {g for r in rows[split] for g in (r["chosen_generator"], r["rejected_generator"])}
                  for split in DEMO_SPLITS}
    assert generators["test_id"] <= set(stats["generators"]["train"])
    assert generators["test_ood"] <= set(stats["generators"]["ood"])
    assert not generators["train"] & generators["test_ood"]


def test_stats_match_the_files(rows, stats):
    for split in DEMO_SPLITS:
        recorded = stats["splits"][split]
        assert recorded["n_pairs"] == len(rows[split])
        assert recorded["bytes"] == demo_path(split).stat().st_size
        longer = sum(1.0 if len(r["chosen"]) > len(r["rejected"]) else 0.5 * (len(r["chosen"]) == len(r["rejected"]))
                     for r in rows[split]) / len(rows[split])
        assert recorded["longer_answer_wins"] == pytest.approx(longer, abs=1e-4)


def test_unknown_split_is_an_error():
    with pytest.raises(WarmError, match="test_id"):
        demo_path("validation")
