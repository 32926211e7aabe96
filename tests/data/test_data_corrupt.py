"""warm.data.corrupt: exact, seeded, real swaps, recorded and carried through files."""

from __future__ import annotations

import json

import pytest

from warm.data.corrupt import corrupt_labels, corruption_record
from warm.data.formats import PreferenceData, load_preferences, save_preferences
from warm.errors import WarmError


def make_data(n: int = 40) -> PreferenceData:
    return PreferenceData("mem", [f"p{i}" for i in range(n)], [f"good{i}" for i in range(n)],
                          [f"bad{i}" for i in range(n)], margin=[float(i) for i in range(n)])


@pytest.mark.parametrize("n, fraction, expected", [(40, 0.0, 0), (40, 0.1, 4), (40, 0.25, 10), (40, 1.0, 40),
                                                   (7, 0.25, 2), (3, 0.5, 2), (1, 0.4, 0)])
def test_exact_count(n, fraction, expected):
    corrupted = corrupt_labels(make_data(n), fraction, seed=0)
    assert sum(corrupted.corrupted) == expected == round(fraction * n)
    assert len(corrupted.corrupted) == n


def test_same_seed_same_pairs_other_seed_other_pairs():
    data = make_data()
    first = corruption_record(corrupt_labels(data, 0.25, seed=1))["indices"]
    assert corruption_record(corrupt_labels(data, 0.25, seed=1))["indices"] == first
    assert corruption_record(corrupt_labels(data, 0.25, seed=2))["indices"] != first
    # a larger fraction with the same seed extends the same draw
    assert set(first) <= set(corruption_record(corrupt_labels(data, 0.5, seed=1))["indices"])


def test_swaps_are_real_and_margins_and_input_untouched():
    data = make_data()
    out = corrupt_labels(data, 0.3, seed=3)
    for i, flag in enumerate(out.corrupted):
        expected = (data.rejected[i], data.chosen[i]) if flag else (data.chosen[i], data.rejected[i])
        assert (out.chosen[i], out.rejected[i]) == expected
    assert out.prompt == data.prompt and out.margin == data.margin
    assert data.corrupted is None and data.chosen[0] == "good0"  # the input is not modified


def test_bad_fraction_and_double_corruption_are_refused():
    data = make_data()
    for fraction in (-0.1, 1.5):
        with pytest.raises(WarmError, match="fraction"):
            corrupt_labels(data, fraction, seed=0)
    with pytest.raises(WarmError, match="already"):
        corrupt_labels(corrupt_labels(data, 0.2, seed=0), 0.2, seed=1)
    clean_flags = corrupt_labels(data, 0.0, seed=0)  # a `corrupted` column of all False is clean
    assert sum(corrupt_labels(clean_flags, 0.1, seed=0).corrupted) == 4


def test_record_and_round_trip_through_a_file(tmp_path):
    out = corrupt_labels(make_data(), 0.25, seed=7)
    record = corruption_record(out)
    assert record["fraction"] == 0.25 and record["seed"] == 7
    assert record["n_pairs"] == 40 and record["n_corrupted"] == 10 == len(record["indices"])
    assert record["indices"] == [i for i, flag in enumerate(out.corrupted) if flag]
    json.dumps(record)  # it goes to a JSON file beside the run

    back = load_preferences(save_preferences(out, tmp_path / "train.jsonl.gz"))
    assert back.corrupted == out.corrupted and back.chosen == out.chosen
    loaded = corruption_record(back)
    assert loaded["indices"] == record["indices"] and loaded["seed"] is None and loaded["fraction"] == 0.25
