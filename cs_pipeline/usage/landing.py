"""Reading one day's delivery from the landing zone into a uniform staging frame.

Files are read one at a time (a loop over files, never over rows) so every row keeps its
file name and 1-based row number: the delivery order that decides which copy of an event
wins. Values stay as delivered here; trimming, parsing and validation happen in SQL.

What is wrong with a whole file (its format, encoding, header, column types; a file that
cannot be opened) is a LandingFileError naming the file, and fails the run; what is wrong
with one row is that row's reject reason, decided in SQL.
"""

from __future__ import annotations

import errno
import gzip
import stat
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from cs_pipeline.lib.input_files import CsvTextError, InputFileError, read_csv_text, shorten

EVENT_COLUMNS = ("event_id", "ts", "account_id", "user_id", "module", "action")
# A CSV or parquet file without one of these columns cannot hold a valid event: most often a
# file delimited by something other than a comma, or without a header row.
REQUIRED_COLUMNS = ("ts", "account_id", "action")
SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".csv")

STAGING_SCHEMA = {
    "source_file": pl.String,
    "source_row": pl.Int64,
    "event_id": pl.String,
    "ts_text": pl.String,
    "ts_value": pl.Datetime("us", "UTC"),
    "account_id": pl.String,
    "user_id": pl.String,
    "module": pl.String,
    "action": pl.String,
    "raw_line": pl.Binary,  # a JSON Lines line as delivered: SQL decodes it, line by line
}


class LandingFileError(InputFileError):
    """A delivered usage file that cannot be used as it is."""

    label = "usage file"


@dataclass(frozen=True)
class Delivery:
    """A day's delivery folder: the usage files in it, and the files of other formats."""
    folder: Path
    files: list[Path]
    ignored: list[Path]


def delivery_folder(landing: Path, day: date) -> Path:
    """Where the events of `day` are delivered: <landing>/usage/date=YYYY-MM-DD."""
    return landing / "usage" / f"date={day.isoformat()}"


def list_delivery(landing: Path, day: date) -> Delivery:
    """The files delivered for `day`, in name order: every entry named like a usage file (read
    later; one that is not a readable file then fails the run); every other entry (markers,
    temp files, folders) is ignored and listed as such."""
    folder = delivery_folder(landing, day)
    if not folder.is_dir():
        return Delivery(folder, [], [])
    entries = sorted(folder.iterdir())
    files = [p for p in entries if p.name.endswith(SUFFIXES)]
    return Delivery(folder, files, [p for p in entries if p not in files])


def read_delivery(delivery: Delivery) -> pl.DataFrame:
    """The rows of every file of the delivery, in the staging schema."""
    frames = [_read_file(path) for path in delivery.files]
    if not frames:
        return pl.DataFrame(schema=STAGING_SCHEMA)
    return pl.concat(frames, how="vertical")


def _read_file(path: Path) -> pl.DataFrame:
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read for ever
            raise LandingFileError(path, "is not a regular file (a folder, FIFO or device)")
        if path.name.endswith(".parquet"):
            frame = _columns_from_table(path, pl.read_parquet(path))
        elif path.name.endswith(".csv"):
            frame = _columns_from_csv(path)
        else:
            frame = _columns_from_json_lines(path)
    except OSError as exc:
        raise LandingFileError(path, _os_cause(exc)) from exc
    except CsvTextError as exc:
        raise LandingFileError(path, exc.cause, exc.line) from exc
    except LandingFileError:
        raise
    except Exception as exc:  # polars raises several error types for unreadable input
        raise LandingFileError(path, f"cannot be read: {shorten(str(exc))}") from exc
    return frame.with_columns(source_file=pl.lit(path.name)).select(list(STAGING_SCHEMA))


def _os_cause(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "does not exist (removed after the folder was listed, or a symlink to nothing)"
    if exc.errno == errno.ELOOP:
        return "is a symlink loop"
    if isinstance(exc, PermissionError):
        return "cannot be read: permission denied"
    return f"cannot be read: {shorten(exc.strerror or str(exc))}"


def _columns_from_csv(path: Path) -> pl.DataFrame:
    """A 0-byte file is a delivery without events."""
    if path.stat().st_size == 0:
        return pl.DataFrame(schema=STAGING_SCHEMA)
    return _columns_from_table(path, read_csv_text(path))


def _columns_from_table(path: Path, table: pl.DataFrame) -> pl.DataFrame:
    """Map a tabular file's columns (matched trimmed, case-insensitively) to staging;
    source_row is the 1-based data row."""
    by_name = {name.strip().lower(): name for name in table.columns}
    missing = [column for column in REQUIRED_COLUMNS if column not in by_name]
    if missing:
        found = shorten(", ".join(table.columns))
        raise LandingFileError(
            path,
            f"has no column {', '.join(missing)} (the header found: {found}); a usage file needs a "
            "header row naming its columns, delimited by commas",
        )
    for column, source in by_name.items():
        if column in EVENT_COLUMNS and not _text_like(column, table.schema[source]):
            raise LandingFileError(path, f"column {source} is {table.schema[source]}, not text")

    def text(column: str) -> pl.Expr:
        source = by_name.get(column)
        return pl.lit(None, dtype=pl.String) if source is None else pl.col(source).cast(pl.String)

    columns = {column: text(column) for column in EVENT_COLUMNS if column != "ts"}
    ts_source = by_name.get("ts")
    ts_type = table.schema[ts_source] if ts_source is not None else None
    if isinstance(ts_type, pl.Datetime):
        # A parquet timestamp without a zone is UTC (docs/data-model.md#usage-events-landing-zone).
        ts_value = pl.col(ts_source)
        if ts_type.time_zone is None:
            ts_value = ts_value.dt.replace_time_zone("UTC")
        columns["ts_value"] = ts_value.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        columns["ts_text"] = pl.lit(None, dtype=pl.String)
    else:
        columns["ts_value"] = pl.lit(None, dtype=pl.Datetime("us", "UTC"))
        columns["ts_text"] = text("ts")
    return table.select(
        **columns,
        raw_line=pl.lit(None, dtype=pl.Binary),
        source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
    )


def _text_like(column: str, dtype: pl.DataType) -> bool:
    """Types a column's values are taken from as text: strings, integers (their digits) and,
    for ts, timestamps and dates. Anything else (floats, lists, structs) is not guessed at."""
    if dtype in (pl.String, pl.Null, pl.Categorical) or isinstance(dtype, pl.Enum) or dtype.is_integer():
        return True
    return column == "ts" and (isinstance(dtype, pl.Datetime) or dtype == pl.Date)


def _columns_from_json_lines(path: Path) -> pl.DataFrame:
    """One staging row per line that is not blank (source_row = its line number), its bytes
    in raw_line: SQL decodes each line on its own (a line that is not UTF-8 is that row's
    problem, not the file's), extracts the fields and rejects a line that is not a JSON
    object, with the line itself as evidence. Lines are split on newline bytes only: no
    other byte inside a line (a tab, a control character) can split it."""
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(path.read_bytes())
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            raise LandingFileError(path, f"is not a readable gzip file: {shorten(str(exc))}") from exc
    else:
        data = path.read_bytes()
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        return pl.DataFrame(schema=STAGING_SCHEMA)
    lines = pc.list_flatten(pc.split_pattern(pa.array([data], pa.large_binary()), pattern=b"\n"))
    # ASCII whitespace only is trimmed for this test: bytes that are not UTF-8 stay as they are.
    blank = pc.equal(pc.binary_length(pc.ascii_trim_whitespace(lines.view(pa.large_string()))), 0)
    numbered = pl.from_arrow(pa.table({"raw_line": lines, "blank": blank})).with_columns(
        source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )
    nulls = {column: pl.lit(None, dtype=pl.String) for column in EVENT_COLUMNS if column != "ts"}
    return numbered.filter(~pl.col("blank")).select(
        **nulls,
        source_row=pl.col("source_row"),
        ts_text=pl.lit(None, dtype=pl.String),
        ts_value=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
        raw_line=pl.col("raw_line").cast(pl.Binary),
    )
