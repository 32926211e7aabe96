"""warm.data.formats: every TRL format, every file type, renamed columns, and each error message."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import pytest

from warm.data.formats import (
    PreferenceData,
    load_preferences,
    save_preferences,
    split_common_prefix,
)
from warm.errors import WarmError

ROWS = [
    {"prompt": "Is water wet?", "chosen": "Yes, it is.", "rejected": "No.", "margin": 1.5, "corrupted": False},
    {"prompt": "Name a pet.", "chosen": "A cat.", "rejected": "NA", "margin": 0.5, "corrupted": True},
    {"prompt": "", "chosen": "Sure, here it is.", "rejected": "None", "margin": 2.0, "corrupted": False},
]


def write_rows(path: Path, rows: list[dict], kind: str) -> Path:
    """Write rows in one of the layouts users bring; `kind` picks the layout."""
    if kind in ("jsonl", "jsonl.gz", "json-lines"):
        opener = gzip.open if kind == "jsonl.gz" else open
        with opener(path, "wt", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
    elif kind == "json-list":
        path.write_text(json.dumps(rows))
    elif kind == "json-field":
        path.write_text(json.dumps({"data": rows}))
    elif kind == "json-columns":
        path.write_text(json.dumps({key: [row[key] for row in rows] for key in rows[0]}))
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif kind == "csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    "kind, name",
    [("jsonl", "d.jsonl"), ("jsonl.gz", "d.jsonl.gz"), ("json-list", "d.json"), ("json-lines", "d.json"),
     ("json-field", "d.json"), ("json-columns", "d.json"), ("parquet", "d.parquet"), ("csv", "d.csv")],
)
def test_every_file_type_reads_the_same_pairs(tmp_path, kind, name):
    data = load_preferences(write_rows(tmp_path / name, ROWS, kind))
    assert len(data) == 3
    assert data.prompt == [r["prompt"] for r in ROWS]
    assert data.chosen == [r["chosen"] for r in ROWS]
    assert data.rejected == ["No.", "NA", "None"]  # "NA" and "None" stay text, also in CSV
    assert data.margin == [1.5, 0.5, 2.0]
    assert data.corrupted == [False, True, False]
    assert data.source == str(tmp_path / name)


def test_extra_columns_are_ignored_and_optional_ones_absent(tmp_path):
    rows = [{"prompt": "p", "chosen": "c", "rejected": "r", "generator": "x", "gold": 0.3}]
    data = load_preferences(write_rows(tmp_path / "d.jsonl", rows, "jsonl"))
    assert (data.prompt, data.chosen, data.rejected, data.margin, data.corrupted) == (["p"], ["c"], ["r"], None, None)


def test_renamed_columns(tmp_path):
    rows = [{"question": "Why?", "good": "Because.", "bad": "No idea."}]
    path = write_rows(tmp_path / "d.jsonl", rows, "jsonl")
    data = load_preferences(path, prompt_key="question", chosen_key="good", rejected_key="bad")
    assert data.to_records() == [{"prompt": "Why?", "chosen": "Because.", "rejected": "No idea."}]


def test_implicit_prompt_is_split_at_a_word_boundary(tmp_path):
    rows = [
        {"chosen": "Q: what colour is it?\nIt is blue.", "rejected": "Q: what colour is it?\nIt is black."},
        {"chosen": "abc", "rejected": "abd"},  # no whitespace boundary: no prompt
        {"chosen": "Hello", "rejected": "Goodbye"},
    ]
    data = load_preferences(write_rows(tmp_path / "d.jsonl", rows, "jsonl"))
    assert data.prompt == ["Q: what colour is it?\nIt is", "", ""]
    assert data.chosen == [" blue.", "abc", "Hello"]
    assert data.rejected == [" black.", "abd", "Goodbye"]


def test_split_common_prefix_keeps_text_and_both_responses():
    cases = [("a b", "a b"), ("Q? Yes", "Q? Yes, and more"), ("Q?\nYes", "Q? No"), ("xy", ""), ("", "")]
    for chosen, rejected in cases:
        prompt, c, r = split_common_prefix(chosen, rejected)
        assert prompt + c == chosen and prompt + r == rejected
        assert c or not chosen
    assert split_common_prefix("a b", "a b") == ("a", " b", " b")
    assert split_common_prefix("Q?\nYes", "Q? No") == ("Q?", "\nYes", " No")


QUESTION = {"role": "user", "content": "What colour is the sky?"}


def answer(text: str) -> dict:
    return {"role": "assistant", "content": text}


def conversation(text: str) -> list[dict]:
    return [QUESTION, answer(text)]


def test_conversational_explicit_and_implicit_give_the_same_turns(tmp_path):
    explicit = [{"prompt": [QUESTION], "chosen": [answer("Blue.")], "rejected": [answer("Green.")]}]
    implicit = [{"chosen": conversation("Blue."), "rejected": conversation("Green.")}]
    a = load_preferences(write_rows(tmp_path / "e.jsonl", explicit, "jsonl"))
    b = load_preferences(write_rows(tmp_path / "i.json", implicit, "json-list"))
    assert a.to_records() == b.to_records() == [
        {"prompt": [QUESTION], "chosen": [answer("Blue.")], "rejected": [answer("Green.")]}
    ]
    assert a.chosen_texts() == ["Blue."] and a.rejected_texts() == ["Green."]


def test_conversational_without_shared_turns_has_no_prompt(tmp_path):
    rows = [{"chosen": conversation("Blue."), "rejected": [{"role": "user", "content": "hi"}, answer("Hello.")]}]
    data = load_preferences(write_rows(tmp_path / "d.jsonl", rows, "jsonl"))
    assert data.prompt == [[]]
    assert data.chosen == [conversation("Blue.")]
    assert data.rejected_texts() == ["Hello."]


def test_conversational_response_must_end_with_the_assistant(tmp_path):
    rows = [{"chosen": conversation("a"), "rejected": conversation("b")},
            {"chosen": conversation("a"), "rejected": [{"role": "user", "content": "hi"}]}]
    with pytest.raises(WarmError, match=r"d.jsonl: row 2: field 'rejected' has no assistant turn"):
        load_preferences(write_rows(tmp_path / "d.jsonl", rows, "jsonl"))


def test_limit_keeps_the_first_rows(tmp_path):
    data = load_preferences(write_rows(tmp_path / "d.jsonl", ROWS, "jsonl"), limit=2)
    assert data.chosen == ["Yes, it is.", "A cat."]


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz"])
def test_save_load_round_trip(tmp_path, name):
    data = PreferenceData("mem", ["p1", "p2"], ["c1", "c2"], ["r1", "r2"], [0.5, 1.0], [True, False])
    path = save_preferences(data, tmp_path / "sub" / name)
    back = load_preferences(path)
    assert back.to_records() == data.to_records()
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left behind
    assert save_preferences(data, tmp_path / "again" / name).read_bytes() == path.read_bytes()  # reproducible


def test_subset_and_records():
    data = PreferenceData("mem", ["a", "b", "c"], ["1", "2", "3"], ["x", "y", "z"], corrupted=[False, True, False])
    sub = data.subset([2, 0])
    assert (sub.prompt, sub.chosen, sub.corrupted, sub.margin) == (["c", "a"], ["3", "1"], [False, False], None)
    assert sub.to_records()[0] == {"prompt": "c", "chosen": "3", "rejected": "z", "corrupted": False}
    with pytest.raises(WarmError, match="differ in length"):
        PreferenceData("mem", ["a"], ["1", "2"], ["x", "y"])


# --- errors: one line, naming the file, the field and the row ---------------------------------------------------


def one_line_error(call) -> str:
    with pytest.raises(WarmError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    message = one_line_error(lambda: load_preferences(tmp_path / "nope.jsonl"))
    assert str(tmp_path / "nope.jsonl") in message and "not found" in message


def test_missing_column_lists_found_columns(tmp_path):
    path = write_rows(tmp_path / "d.jsonl", [{"prompt": "p", "answer": "a", "rejected": "r"}], "jsonl")
    message = one_line_error(lambda: load_preferences(path))
    assert str(path) in message and "'chosen'" in message and "prompt, answer, rejected" in message
    message = one_line_error(lambda: load_preferences(path, prompt_key="question", chosen_key="answer"))
    assert "'question'" in message


@pytest.mark.parametrize(
    "bad_row, expected",
    [({"prompt": "p", "chosen": None, "rejected": "r"}, "row 2: field 'chosen' is null"),
     ({"prompt": "p", "chosen": "c"}, "row 2: field 'rejected' is null"),
     ({"prompt": 7, "chosen": "c", "rejected": "r"}, "row 2: field 'prompt' must be a string"),
     ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": None}, "row 2: field 'margin' is null"),
     ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": "big"}, "row 2: field 'margin' must be a number")],
)
def test_bad_values_name_row_and_field(tmp_path, bad_row, expected):
    good = {"prompt": "p", "chosen": "c", "rejected": "r"}
    if "margin" in bad_row:
        good["margin"] = 1.0
    path = write_rows(tmp_path / "d.jsonl", [good, bad_row], "jsonl")
    message = one_line_error(lambda: load_preferences(path))
    assert str(path) in message and expected in message


def test_empty_and_malformed_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    assert "no rows" in one_line_error(lambda: load_preferences(tmp_path / "empty.jsonl"))
    (tmp_path / "bad.jsonl").write_text('{"chosen": "a", \n')
    assert str(tmp_path / "bad.jsonl") in one_line_error(lambda: load_preferences(tmp_path / "bad.jsonl"))
    (tmp_path / "d.txt").write_text("hello")
    assert "unsupported file type" in one_line_error(lambda: load_preferences(tmp_path / "d.txt"))
    with pytest.raises(WarmError, match="limit"):
        load_preferences(write_rows(tmp_path / "d.jsonl", ROWS, "jsonl"), limit=0)


def test_hub_name_offline_is_one_line():  # conftest sets HF_HUB_OFFLINE=1
    message = one_line_error(lambda: load_preferences("someone/no-such-preferences"))
    assert "someone/no-such-preferences" in message and "offline" in message


def test_save_refuses_other_suffixes(tmp_path):
    data = PreferenceData("mem", ["p"], ["c"], ["r"])
    with pytest.raises(WarmError, match=".jsonl"):
        save_preferences(data, tmp_path / "d.csv")


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.csv"])
def test_bytes_that_are_not_utf8_name_their_line(tmp_path, name):
    lines = [b'{"prompt": "p", "chosen": "c", "rejected": "r"}', b'{"prompt": "p", "chosen": "caf\xe9", "rejected": "r"}']
    if name.endswith(".csv"):
        lines = [b"prompt,chosen,rejected", b"p,c,r", b"p,caf\xe9,r"]
    raw = b"\n".join(lines) + b"\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    message = one_line_error(lambda: load_preferences(path))
    line = 3 if name.endswith(".csv") else 2
    assert f"{path}: line {line}, column" in message and "byte 0xe9 is not UTF-8" in message


def test_malformed_json_lines_name_their_line(tmp_path):
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    (tmp_path / "trailing.jsonl").write_text(good + "\n" + good + " x\n")
    message = one_line_error(lambda: load_preferences(tmp_path / "trailing.jsonl"))
    assert message == f"{tmp_path / 'trailing.jsonl'}: line 2: invalid JSON (Extra data at column 49)"
    changed = [good] * 9 + [json.dumps({"prompt": "p", "chosen": "c", "rejected": {"text": "r"}})]
    (tmp_path / "kinds.jsonl").write_text("\n".join(changed) + "\n")
    message = one_line_error(lambda: load_preferences(tmp_path / "kinds.jsonl"))
    assert re.search(r"(line|row) 10\b", message) and "'rejected'" in message and "Column(" not in message


def test_directories_header_only_csv_and_identical_pairs(tmp_path):
    (tmp_path / "empty").mkdir()
    message = one_line_error(lambda: load_preferences(tmp_path / "empty"))
    assert "a directory with no data file" in message and "partial" not in message
    from datasets import Dataset

    Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    assert load_preferences(tmp_path / "saved").chosen == [row["chosen"] for row in ROWS]
    (tmp_path / "header.csv").write_text("prompt,chosen,rejected\n")
    assert one_line_error(lambda: load_preferences(tmp_path / "header.csv")) == f"{tmp_path / 'header.csv'}: no rows"
    rows = [{"prompt": "p", "chosen": "same", "rejected": "same"}, {"prompt": "p", "chosen": "a", "rejected": "b"},
            {"prompt": "q", "chosen": "x", "rejected": "x"}]
    with pytest.warns(UserWarning, match="2 pair\\(s\\) with identical chosen and rejected"):
        assert len(load_preferences(write_rows(tmp_path / "same.jsonl", rows, "jsonl"))) == 3


def test_json_diagnosis_names_the_line_where_a_field_changes_kind(tmp_path):
    from warm.data.sources import diagnose_json

    rows = [json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})] * 9
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(rows + [json.dumps({"prompt": "p", "chosen": "c", "rejected": {"x": 1}})]) + "\n")
    assert diagnose_json(path) == "line 10: field 'rejected' is an object, but text on line 1"
    path.write_text("\n".join(rows + ["[1, 2]"]) + "\n")
    assert diagnose_json(path) == "line 10: expected a JSON object, got a list"
    path.write_text(json.dumps([{"prompt": "p"}]))
    assert diagnose_json(path) is None  # one valid JSON document: nothing to point at
