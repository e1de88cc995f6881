"""Reading one day's delivery from the landing zone into a uniform staging frame.

Files are read one at a time (a loop over files, never over rows) so every row keeps its
file name and 1-based row number: the delivery order that decides which copy of an event
wins. Values stay as delivered here; trimming, parsing and validation happen in SQL.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

EVENT_COLUMNS = ("event_id", "ts", "account_id", "user_id", "module", "action")
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
    "raw_json": pl.String,
}


class LandingFileError(ValueError):
    """A delivered file that cannot be read at all; names the file."""


@dataclass(frozen=True)
class Delivery:
    folder: Path
    files: list[Path]
    ignored: list[Path]


def delivery_folder(landing: Path, day: date) -> Path:
    return landing / "usage" / f"date={day.isoformat()}"


def list_delivery(landing: Path, day: date) -> Delivery:
    """The files delivered for `day`, in name order; other files (markers, temp files) are ignored."""
    folder = delivery_folder(landing, day)
    if not folder.is_dir():
        return Delivery(folder, [], [])
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    files = [p for p in entries if p.name.endswith(SUFFIXES)]
    return Delivery(folder, files, [p for p in entries if p not in files])


def read_delivery(delivery: Delivery) -> pl.DataFrame:
    frames = [_read_file(path) for path in delivery.files]
    if not frames:
        return pl.DataFrame(schema=STAGING_SCHEMA)
    return pl.concat(frames, how="vertical")


def _read_file(path: Path) -> pl.DataFrame:
    if _is_empty(path):
        return pl.DataFrame(schema=STAGING_SCHEMA)
    try:
        if path.name.endswith(".parquet"):
            frame = _columns_from_table(pl.read_parquet(path))
        elif path.name.endswith(".csv"):
            frame = _columns_from_table(pl.read_csv(path, infer_schema=False))
        else:
            frame = _columns_from_json_lines(path)
    except LandingFileError:
        raise
    except Exception as exc:  # polars raises several error types for unreadable input
        raise LandingFileError(f"usage file {path} cannot be read: {exc}") from exc
    return frame.with_columns(source_file=pl.lit(path.name)).select(list(STAGING_SCHEMA))


def _is_empty(path: Path) -> bool:
    """A 0-byte text file (or gzip of nothing) is a delivery without events, not an error."""
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "rb") as handle:
            return not handle.read(1)
    return not path.name.endswith(".parquet") and path.stat().st_size == 0


def _columns_from_table(table: pl.DataFrame) -> pl.DataFrame:
    """Map a tabular file's columns (matched trimmed, case-insensitively) to staging;
    source_row is the 1-based data row."""
    by_name = {name.strip().lower(): name for name in table.columns}

    def text(column: str) -> pl.Expr:
        source = by_name.get(column)
        return pl.lit(None, dtype=pl.String) if source is None else pl.col(source).cast(pl.String)

    columns = {column: text(column) for column in EVENT_COLUMNS if column != "ts"}
    ts_source = by_name.get("ts")
    ts_type = table.schema[ts_source] if ts_source is not None else None
    if isinstance(ts_type, pl.Datetime):
        # A parquet timestamp without a zone is UTC (SPEC 3.4).
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
        raw_json=pl.lit(None, dtype=pl.String),
        source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
    )


def _columns_from_json_lines(path: Path) -> pl.DataFrame:
    """One staging row per non-empty line (source_row = its line number), the text in
    raw_json: SQL extracts the fields and rejects a line that is not a JSON object, with
    the line itself as evidence."""
    lines = pl.read_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["raw_json"],
        schema_overrides={"raw_json": pl.String},
    )
    nulls = {column: pl.lit(None, dtype=pl.String) for column in EVENT_COLUMNS if column != "ts"}
    numbered = lines.with_columns(source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    return numbered.filter(pl.col("raw_json").str.strip_chars() != "").select(
        **nulls,
        source_row=pl.col("source_row"),
        ts_text=pl.lit(None, dtype=pl.String),
        ts_value=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
        raw_json=pl.col("raw_json"),
    )
