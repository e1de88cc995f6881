"""Hostile usage deliveries (docs/hostile-input.md): a fuzzer (Hypothesis, fixed seed, bounded
examples) and one example per input class.

The property, for any delivery: either ingestion succeeds, every delivered row is stored or
rejected with its reason (stored + rejected + duplicates = rows read) and the valid rows are
exactly the stored ones; or it fails with a LandingFileError naming the file at fault, and
every table of the warehouse is exactly what it was before. The warehouse a delivery lands in
already holds the day before and an earlier delivery of the same day, so "nothing lost" is
tested too.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cs_pipeline.usage.ingest import FIELD_LENGTH_LIMIT, ingest_delivery
from cs_pipeline.usage.landing import LandingFileError, list_delivery, read_delivery
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.warehouse import warehouse_digest

D = date(2025, 11, 21)
D_PREV = D - timedelta(days=1)
TEXT_FIELDS = ("event_id", "account_id", "user_id", "module", "action")
FUZZ = settings(
    derandomize=True,
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# --------------------------------------------------------------------------- the warehouse before


def day_folder(landing: Path, day: date) -> Path:
    folder = landing / "usage" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ingest(con, landing: Path, day: date = D):
    return ingest_delivery(con, landing=landing, partition_date=day, module_limit=100, action_limit=500, run_id="r")


@pytest.fixture(scope="module")
def stocked(tmp_path_factory) -> Path:
    """A landing zone and warehouse holding D-1 and a first delivery of D."""
    root = tmp_path_factory.mktemp("stocked")
    for day, name in ((D_PREV, "old.csv"), (D, "first.csv")):
        (day_folder(root / "landing", day) / name).write_text(
            f"event_id,ts,account_id,action\nkeep-{day},{day}T08:00:00Z,ACC-1,view\nbad-{day},never,ACC-1,view\n"
        )
    con = connect(root / "w.duckdb")
    ingest(con, root / "landing", D_PREV)
    ingest(con, root / "landing", D)
    con.close()
    return root


@pytest.fixture
def stocked_copy(stocked, tmp_path):
    """A copy of the stocked warehouse, D's folder empty for the delivery under test."""
    shutil.copytree(stocked, tmp_path / "t")
    shutil.rmtree(day_folder(tmp_path / "t" / "landing", D))
    return tmp_path / "t"


# --------------------------------------------------------------------------- generated deliveries


@dataclass
class Row:
    values: dict  # field -> what is delivered (str, or for JSON Lines any JSON value)
    reason: str | None  # the reject reason the row must get (None: stored)
    bad_bytes: bool = False  # a JSON Lines line with a byte that is not UTF-8


@dataclass
class File:
    name: str
    id_prefix: str  # the event_ids of its rows start with it
    rows: list[Row]
    corruption: str | None = None  # how the file's bytes are spoiled (None: intact)
    data: bytes = field(default=b"", repr=False)


FILE_CORRUPTIONS = {
    # a corruption that must fail the file, whatever the rows
    "csv": ["semicolons", "no_header", "utf16", "bad_byte", "unterminated_quote"],
    "jsonl": [],
    "jsonl.gz": ["gzip_garbage", "plain_text"],
    "parquet": ["truncated"],
}
TRUNCATABLE = {"csv", "jsonl"}  # cut short they may still read: rows lost at the cut are allowed

text_value = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=10)
padding = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def timestamps(draw) -> tuple[str | int, str | None]:
    """A ts as delivered, and the reason it gets (None: valid)."""
    kind = draw(st.sampled_from(["valid", "valid", "valid", "date_only", "future", "odd", "epoch", "blank"]))
    if kind in ("valid", "future"):
        base = datetime(2025, 11, 18, tzinfo=UTC) if kind == "valid" else datetime(2025, 11, 23, tzinfo=UTC)
        instant = base + timedelta(seconds=draw(st.integers(0, 4 * 86400 - 1 if kind == "valid" else 86400 * 30)))
        offset = draw(st.sampled_from([None, 0, 14 * 60, -12 * 60, 5 * 60 + 30]))
        fraction = draw(st.sampled_from(["", ".5", ".123456"]))
        local = instant + timedelta(minutes=offset or 0)
        text = local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + _offset_suffix(offset)
        future = instant.date() > D + timedelta(days=1)
        return text, "future_timestamp" if future else None
    if kind == "date_only":
        return draw(st.sampled_from(["2025-11-21", " 2025-11-20 "])), None
    if kind == "odd":
        odd = ["21/11/2025 10:00", "Nov 21 2025", "epoch", "infinity", "2025-13-45"]
        return draw(st.sampled_from(odd)), "bad_timestamp"
    if kind == "epoch":
        return draw(st.sampled_from(["1763719200", 1763719200])), "bad_timestamp"
    return draw(st.sampled_from(["", "   "])), "bad_timestamp"


def _offset_suffix(minutes: int | None) -> str:
    if minutes is None:
        return ""
    if minutes == 0:
        return "Z"
    return f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"


@st.composite
def rows(draw, file_kind: str, event_id: str) -> Row:
    json_lines = file_kind.startswith("jsonl")
    ts, ts_reason = draw(timestamps())
    if not json_lines and not isinstance(ts, str):
        ts = str(ts)
    values = {
        "event_id": event_id,
        "ts": ts,
        "account_id": draw(padding) + draw(text_value) + draw(padding),
        "user_id": draw(st.one_of(st.none(), text_value)),
        "module": draw(st.one_of(st.none(), text_value)),
        "action": draw(text_value),
    }
    spoil = draw(st.sampled_from(
        ["none"] * 6 + ["blank_account", "blank_action", "long", "at_limit"]
        + (["bad_type", "malformed", "bad_bytes"] if json_lines else [])
    ))  # fmt: skip
    if spoil == "blank_account":
        values["account_id"] = draw(st.sampled_from(["", "  ", None]))
    elif spoil == "blank_action":
        values["action"] = draw(st.sampled_from(["", " \t ", None]))
    elif spoil in ("long", "at_limit"):
        name = draw(st.sampled_from(["account_id", "user_id", "module", "action"]))
        values[name] = "x" * (FIELD_LENGTH_LIMIT + (draw(st.sampled_from([1, 4000])) if spoil == "long" else 0))
    elif spoil == "bad_type":
        name = draw(st.sampled_from(["account_id", "user_id", "module", "action"]))
        values[name] = draw(st.sampled_from([7, 1.5, True, {"id": "x"}, ["x"]]))
    elif spoil == "malformed":
        return Row(draw(st.sampled_from(["not json", '["a list"]', '{"cut": "sho', "42"])), "malformed_row")
    elif spoil == "bad_bytes":
        return Row(values, "malformed_row", bad_bytes=True)
    return Row(values, _expected_reason(values, ts_reason))


def _clean(value) -> str | None:
    if value is None:
        return None
    trimmed = value.strip(" \t\r\n") if value[:1] <= " " or value[-1:] <= " " else value
    return trimmed or None


def _expected_reason(values: dict, ts_reason: str | None) -> str | None:
    """The first failing check, in the order the ingestion applies them."""
    if any(not (value is None or isinstance(value, str)) for name, value in values.items() if name in TEXT_FIELDS):
        return "bad_type"
    if any(len(_clean(values[name]) or "") > FIELD_LENGTH_LIMIT for name in TEXT_FIELDS):
        return "field_too_long"
    if _clean(values["account_id"]) is None:
        return "missing_account_id"
    if _clean(values["action"]) is None:
        return "missing_action"
    return ts_reason


def _text(value) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)


def render(file: File, kind: str) -> bytes:
    """The file's bytes, then its corruption applied."""
    if kind == "parquet":
        frame = pl.DataFrame(
            {name: [_text(row.values[name]) for row in file.rows] for name in ("event_id", "ts", *TEXT_FIELDS[1:])},
            schema={name: pl.String for name in ("event_id", "ts", *TEXT_FIELDS[1:])},
        )
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        data = buffer.getvalue()
        return data[: len(data) // 2] if file.corruption == "truncated" else data
    if kind == "csv":
        buffer = io.StringIO()
        delimiter = ";" if file.corruption == "semicolons" else ","
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        if file.corruption != "no_header":
            writer.writerow([" Event_ID", "TS ", "account_id", "user_id", "module", "ACTION"])
        for row in file.rows:
            writer.writerow([row.values[name] or "" for name in ("event_id", "ts", *TEXT_FIELDS[1:])])
        text = buffer.getvalue()
        if file.corruption == "utf16":
            return text.encode("utf-16")
        data = text.encode()
        if file.corruption == "bad_byte":
            return data.replace(b"\n", b"\n\xff", 1) if len(file.rows) else data + b"\xff\n"
        if file.corruption == "unterminated_quote":
            return data + b'late-1,2025-11-21T10:00:00Z,"ACC-1,view\n'
        return data
    lines = []
    for row in file.rows:
        if isinstance(row.values, str):
            lines.append(row.values.encode())
        else:
            line = json.dumps({name: value for name, value in row.values.items() if value is not None}).encode()
            lines.append(line.replace(b'"action": "', b'"action": "\xff', 1) if row.bad_bytes else line)
    data = b"".join(line + b"\n" for line in lines)
    if kind == "jsonl.gz":
        if file.corruption == "plain_text":
            return data or b"plain\n"
        compressed = gzip.compress(data)
        return compressed[:12] + b"garbage" + compressed[12:] if file.corruption == "gzip_garbage" else compressed
    return data


@st.composite
def deliveries(draw) -> list[File]:
    files = []
    for index in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["csv", "jsonl", "jsonl.gz", "parquet"]))
        prefix = f"e{index}-"
        file_rows = [draw(rows(kind, f"{prefix}{n}")) for n in range(draw(st.integers(0, 6)))]
        corruption = None
        if draw(st.integers(0, 4)) == 0:
            corruption = draw(st.sampled_from(FILE_CORRUPTIONS[kind] + (["cut"] if kind in TRUNCATABLE else [])))
        if corruption == "no_header" and not file_rows:
            corruption = None  # an empty file without a header is an empty delivery, not a broken one
        file = File(f"part-{index}.{kind}", prefix, file_rows, corruption)
        file.data = render(file, kind)
        if corruption == "cut":
            file.data = file.data[: draw(st.integers(0, max(len(file.data) - 1, 0)))]
        files.append(file)
    return files


def stored_ids(con) -> set[str]:
    rows = con.execute("SELECT event_id FROM usage_events WHERE partition_date = ?", [D]).fetchall()
    return {event_id for (event_id,) in rows}


@pytest.mark.e2e
@pytest.mark.fuzz
@FUZZ
@given(delivery=deliveries())
def test_any_delivery_is_stored_and_rejected_row_by_row_or_fails_naming_a_file_and_changes_nothing(stocked, delivery):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        shutil.copytree(stocked, root, dirs_exist_ok=True)
        shutil.rmtree(day_folder(root / "landing", D))
        folder = day_folder(root / "landing", D)
        for file in delivery:
            (folder / file.name).write_bytes(file.data)
        con = connect(root / "w.duckdb")
        try:
            before = warehouse_digest(con)
            must_fail = [f.name for f in delivery if f.corruption not in (None, "cut")]
            try:
                result = ingest(con, root / "landing")
            except LandingFileError as exc:
                event(f"failed: {exc.path.suffix}")
                assert exc.path.name in must_fail + [f.name for f in delivery if f.corruption == "cut"]
                assert exc.path.name in str(exc) and exc.cause and len(str(exc)) < 500
                assert warehouse_digest(con) == before
                return
            assert must_fail == [], f"{must_fail} should have failed"
            event(f"stored {min(result.events_stored, 5)}+, rejected {min(result.rows_rejected, 5)}+")
            for reason, count in result.rejected.items():
                if count:
                    event(f"reason {reason}")
            intact = [f for f in delivery if f.corruption is None]
            valid = {row.values["event_id"] for f in intact for row in f.rows if row.reason is None}
            expected_rejected = {
                (f.name, n, row.reason) for f in intact for n, row in enumerate(f.rows, start=1) if row.reason
            }
            rejected = set(
                con.execute(
                    "SELECT source_file, source_row, reason FROM rejected_events WHERE partition_date = ?", [D]
                ).fetchall()
            )
            cut = [f for f in delivery if f.corruption == "cut"]
            assert {r for r in rejected if r[0] not in {f.name for f in cut}} == expected_rejected
            stored = stored_ids(con)
            assert {i for i in stored if not any(i.startswith(f.id_prefix) for f in cut)} == valid
            assert result.events_stored + result.rows_rejected + result.duplicates == result.rows_read
            if not cut:
                assert result.rows_read == sum(len(f.rows) for f in delivery)
            # the day before is untouched; the earlier delivery of D is replaced, not added to
            assert con.execute("SELECT event_id FROM usage_events WHERE partition_date = ?", [D_PREV]).fetchall() == [
                (f"keep-{D_PREV}",)
            ]
            assert f"keep-{D}" not in stored
        finally:
            con.close()


# --------------------------------------------------------------------------- one example per class


def fails_naming(con, landing: Path, name: str, *fragments: str) -> str:
    before = warehouse_digest(con)
    with pytest.raises(LandingFileError) as caught:
        ingest(con, landing)
    message = str(caught.value)
    assert caught.value.path.name == name and name in message
    for fragment in fragments:
        assert fragment in message
    assert len(message.splitlines()) == 1 and len(message) < 400
    assert warehouse_digest(con) == before
    return message


@pytest.fixture
def con(stocked_copy):
    connection = connect(stocked_copy / "w.duckdb")
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("text", "header"),
    [
        ("event_id;ts;account_id;action\ne1;2025-11-21T10:00:00Z;ACC-1;view\n", "event_id;ts;account_id;action"),
        ("e1,2025-11-21T10:00:00Z,ACC-1,view\ne2,2025-11-21T11:00:00Z,ACC-1,view\n", "e1, 2025-11-21T10:00:00Z"),
    ],
    ids=["semicolons", "no_header"],
)
def test_csv_without_a_comma_header_fails_naming_the_header_it_found(con, stocked_copy, text, header):
    landing = stocked_copy / "landing"
    (day_folder(landing, D) / "a.csv").write_text(text)
    fails_naming(con, landing, "a.csv", "has no column", header)


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (b"event_id,ts,account_id,action\ne1,2025-11-21T10:00:00Z,\"ACC-1,view\n" + b"e2,2025-11-21,A,v\n" * 3000,
         ["line 2", "unterminated quote"]),
        (b"event_id,ts,account_id,action\ne1,2025-11-21T10:00:00Z,ACC-1,view\ne2,2025-11-21,AC\xffC,view\n",
         ["line 3", "encoding", "not UTF-8"]),
        ("event_id,ts,account_id,action\ne1,2025-11-21,ACC-1,view\n".encode("utf-16"), ["encoding", "UTF-16"]),
        (b"event_id,ts,account_id,action\ne1,2025-11-21T10:00:00Z,ACC-1,view,extra\n", ["line 2", "5 fields"]),
    ],
    ids=["unterminated_quote", "bad_byte", "utf16", "extra_field"],
)  # fmt: skip
def test_unreadable_csv_fails_with_file_line_and_cause_in_one_short_line(con, stocked_copy, data, fragments):
    landing = stocked_copy / "landing"
    (day_folder(landing, D) / "a.csv").write_bytes(data)
    fails_naming(con, landing, "a.csv", *fragments)


@pytest.mark.parametrize(
    "data",
    [gzip.compress(b'{"a": 1}\n' * 50)[:20] + b"garbage", b"plain text, not gzip\n", gzip.compress(b'{"a": 1}\n')[:-6]],
    ids=["garbage_after_header", "plain_text", "truncated"],
)
def test_broken_gzip_fails_naming_the_file(con, stocked_copy, data):
    landing = stocked_copy / "landing"
    (day_folder(landing, D) / "a.jsonl.gz").write_bytes(data)
    fails_naming(con, landing, "a.jsonl.gz", "is not a readable gzip file")


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda folder: os.symlink(folder / "b.jsonl", folder / "b.jsonl"), "symlink loop"),
        (lambda folder: os.symlink(folder / "gone.jsonl", folder / "b.jsonl"), "does not exist"),
        (lambda folder: os.mkfifo(folder / "b.jsonl"), "not a regular file"),
    ],
    ids=["symlink_loop", "dangling_symlink", "fifo"],
)
def test_an_entry_that_cannot_be_read_fails_naming_it(con, stocked_copy, make, cause):
    landing = stocked_copy / "landing"
    folder = day_folder(landing, D)
    (folder / "a.csv").write_text("event_id,ts,account_id,action\ne1,2025-11-21T10:00:00Z,ACC-1,view\n")
    make(folder)
    fails_naming(con, landing, "b.jsonl", cause)


def test_a_file_removed_between_listing_and_reading_fails_naming_it(stocked_copy):
    landing = stocked_copy / "landing"
    (day_folder(landing, D) / "a.csv").write_text("event_id,ts,account_id,action\ne1,2025-11-21T10:00:00Z,A,v\n")
    delivery = list_delivery(landing, D)
    (delivery.folder / "a.csv").unlink()
    with pytest.raises(LandingFileError, match=r"a\.csv: does not exist \(removed after the folder was listed"):
        read_delivery(delivery)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode; the FIFO case covers root")
def test_a_file_without_read_permission_fails_naming_it(con, stocked_copy):
    landing = stocked_copy / "landing"
    path = day_folder(landing, D) / "a.csv"
    path.write_text("event_id,ts,account_id,action\ne1,2025-11-21T10:00:00Z,A,v\n")
    path.chmod(0)
    fails_naming(con, landing, "a.csv", "permission denied")


def test_ignored_entries_are_every_entry_not_named_like_a_usage_file(con, stocked_copy):
    landing = stocked_copy / "landing"
    folder = day_folder(landing, D)
    (folder / "a.csv").write_text("event_id,ts,account_id,action\ne1,2025-11-21T10:00:00Z,ACC-1,view\n")
    (folder / "_SUCCESS").write_text("")
    os.symlink(folder / "nowhere", folder / "_marker")
    (folder / "_temporary").mkdir()

    result = ingest(con, landing)

    assert (result.files, result.files_ignored, result.events_stored) == (1, ["_SUCCESS", "_marker", "_temporary"], 1)


def test_parquet_column_of_lists_fails_naming_the_column(con, stocked_copy):
    landing = stocked_copy / "landing"
    frame = pl.DataFrame({"ts": ["2025-11-21"], "account_id": ["ACC-1"], "action": ["view"], "user_id": [[1, 2]]})
    frame.write_parquet(day_folder(landing, D) / "a.parquet")
    fails_naming(con, landing, "a.parquet", "column user_id is List(Int64), not text")


def rejected(con) -> list[tuple]:
    return con.execute(
        "SELECT source_file, source_row, reason, raw::VARCHAR FROM rejected_events WHERE partition_date = ? "
        "ORDER BY source_file, source_row",
        [D],
    ).fetchall()


def test_json_lines_row_with_bad_bytes_alone_is_malformed_and_keeps_a_readable_raw(con, stocked_copy):
    landing = stocked_copy / "landing"
    (day_folder(landing, D) / "a.jsonl").write_bytes(
        b'{"event_id": "j1", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "action": "view"}\n'
        b'{"event_id": "j2", "ts": "2025-11-21T10:00:00Z", "account_id": "AC\xffC", "action": "view"}\n'
        b"\n"
        b'{"event_id": "j4", "ts": "2025-11-21T11:00:00Z", "account_id": "Caf\xc3\xa9", "action": "view"}\n'
    )

    result = ingest(con, landing)

    assert stored_ids(con) == {"j1", "j4"}
    raw = '{"event_id": "j2", "ts": "2025-11-21T10:00:00Z", "account_id": "AC\\xFFC", "action": "view"}'
    assert rejected(con) == [("a.jsonl", 2, "malformed_row", json.dumps(raw))]
    assert (result.rows_read, result.rejected["malformed_row"]) == (3, 1)


def test_field_bounds_and_types_reject_the_row_with_its_reason_and_keep_it_in_raw(con, stocked_copy):
    landing = stocked_copy / "landing"
    at_limit, beyond = "u" * FIELD_LENGTH_LIMIT, "u" * (FIELD_LENGTH_LIMIT + 1)
    lines = [
        {"event_id": "ok", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "user_id": at_limit, "action": "v"},
        {"event_id": "long", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "user_id": beyond, "action": "v"},
        {"event_id": "huge", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "user_id": "u" * 5_000_000,
         "action": "v"},
        {"event_id": "obj", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "user_id": {"id": 1}, "action": "v"},
        {"event_id": "num", "ts": "2025-11-21T10:00:00Z", "account_id": 12345, "action": "v"},
        {"event_id": "list", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "action": ["v"]},
        {"event_id": "null", "ts": "2025-11-21T10:00:00Z", "account_id": "ACC-1", "module": None, "action": "v"},
    ]  # fmt: skip
    (day_folder(landing, D) / "a.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    result = ingest(con, landing)

    assert stored_ids(con) == {"ok", "null"}
    assert [(row, reason) for _, row, reason, _ in rejected(con)] == [
        (2, "field_too_long"), (3, "field_too_long"), (4, "bad_type"), (5, "bad_type"), (6, "bad_type"),
    ]  # fmt: skip
    assert [json.loads(raw) for *_, raw in rejected(con)] == lines[1:6]  # raw keeps the row as delivered
    assert (result.rejected["field_too_long"], result.rejected["bad_type"]) == (2, 3)
    # the stored user of the row at the limit is whole
    assert con.execute("SELECT length(user_id) FROM usage_events WHERE event_id = 'ok'").fetchone() == (1000,)


def test_csv_field_beyond_the_bound_is_rejected_and_the_rest_stored(con, stocked_copy):
    landing = stocked_copy / "landing"
    (day_folder(landing, D) / "a.csv").write_text(
        f"event_id,ts,account_id,module,action\nc1,2025-11-21T10:00:00Z,ACC-1,{'m' * 1001},view\n"
        "c2,2025-11-21T10:00:00Z,ACC-1,Billing,view\n"
    )

    ingest(con, landing)

    assert stored_ids(con) == {"c2"}
    assert [(row, reason) for _, row, reason, _ in rejected(con)] == [(1, "field_too_long")]
