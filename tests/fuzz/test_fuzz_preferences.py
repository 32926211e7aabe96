"""Fuzzing preference-file loading: any bytes, any encoding, any JSON shape, any column set must end in pairs or
in one-line WarmError naming the file, never a traceback, and reading must write nothing."""

from __future__ import annotations

import csv
import gzip
import io
import json
import warnings

from fuzzing import examples
from hypothesis import given
from hypothesis import strategies as st

from warm.data.formats import PreferenceData, load_preferences
from warm.errors import WarmError

KEYS = ["prompt", "chosen", "rejected", "margin", "corrupted", "extra"]
TEXT = st.text(max_size=12)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 3]), "content": TEXT})
VALUE = st.one_of(TEXT, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                  st.lists(MESSAGE, max_size=3), st.lists(TEXT, max_size=2), st.dictionaries(TEXT, TEXT, max_size=2))
ROW = st.dictionaries(st.sampled_from(KEYS), VALUE, max_size=6)
WELL_FORMED = st.fixed_dictionaries({"prompt": TEXT, "chosen": TEXT, "rejected": TEXT})
ROWS = st.lists(st.one_of(ROW, WELL_FORMED), max_size=6)


def check_load(path) -> None:
    before = sorted(p.name for p in path.parent.iterdir())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # identical pairs warn: a result, not a failure
            data = load_preferences(path)
    except WarmError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message, message
    else:
        assert isinstance(data, PreferenceData) and len(data) > 0
        for column in (data.prompt, data.chosen, data.rejected):
            assert all(isinstance(v, (str, list)) for v in column)
    assert sorted(p.name for p in path.parent.iterdir()) == before  # loading writes nothing


@examples(40)
@given(raw=st.binary(max_size=200), suffix=st.sampled_from([".jsonl", ".json", ".csv", ".jsonl.gz"]))
def test_random_bytes(tmp_path_factory, raw, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"data{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") and raw[:1] != b"\x00" else raw)
    check_load(path)


@examples(60)
@given(rows=ROWS, layout=st.sampled_from(["jsonl", "json-list", "json-columns", "csv"]),
       encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_random_rows_layouts_and_encodings(tmp_path_factory, rows, layout, encoding):
    path = tmp_path_factory.mktemp("rows") / ("data.csv" if layout == "csv" else
                                              "data.jsonl" if layout == "jsonl" else "data.json")
    if layout == "jsonl":
        text = "".join(json.dumps(row) + "\n" for row in rows)
    elif layout == "json-list":
        text = json.dumps(rows)
    elif layout == "json-columns":
        text = json.dumps({key: [row.get(key) for row in rows] for key in KEYS if any(key in row for row in rows)})
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=KEYS[:3] + ["margin"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows([{k: v for k, v in row.items() if not isinstance(v, (list, dict))} for row in rows])
        text = buffer.getvalue()
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates: invalid UTF-8 on purpose
    check_load(path)
