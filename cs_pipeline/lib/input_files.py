"""Delivered input files (usage deliveries, CRM exports): the error that names a file that
cannot be used, and reading a CSV file as text columns, with a short error naming the line
and what is wrong when the file is not UTF-8 CSV.

Polars reads the file; only when it fails is the file scanned again, in Python, to find the
line to name: that costs time on the failure path alone. Polars' own messages can quote
thousands of lines of the file, so they are never passed on whole.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import polars as pl

ENCODING_PROBE_BYTES = 64 * 1024
MESSAGE_CHARS = 200  # the most of a reader's message, or of a header, an error quotes
_WIDE_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


class InputFileError(ValueError):
    """An input file that cannot be used as it is: names the file, the line when known, and
    what is wrong. Each kind of input names itself (`label`)."""

    label = "input file"

    def __init__(self, path: Path, cause: str, line: int | None = None):
        where = f"{self.label} {path}" + ("" if line is None else f", line {line}")
        super().__init__(f"{where}: {cause}")
        self.path = path
        self.cause = cause
        self.line = line


class CsvTextError(ValueError):
    """What is wrong with a CSV file, and the 1-based line where it shows (None: the whole file)."""

    def __init__(self, cause: str, line: int | None = None):
        super().__init__(cause if line is None else f"line {line}: {cause}")
        self.cause = cause
        self.line = line


def shorten(text: str) -> str:
    """The first line of `text`, cut to MESSAGE_CHARS characters."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= MESSAGE_CHARS else first[:MESSAGE_CHARS] + "…"


def read_csv_text(path: Path) -> pl.DataFrame:
    """Every column as text, the header's names as written (a UTF-8 BOM is dropped)."""
    _probe_encoding(path)
    try:
        return pl.read_csv(path, infer_schema=False)
    except Exception as exc:  # polars raises several error types for unreadable input
        raise _diagnose(path, exc) from exc


def _probe_encoding(path: Path) -> None:
    """UTF-16 and UTF-32 read as UTF-8 give garbled names and values rather than an error:
    a wide byte-order mark, or NUL bytes, at the start of the file say so."""
    with path.open("rb") as handle:
        head = handle.read(ENCODING_PROBE_BYTES)
    for bom, encoding in _WIDE_BOMS.items():
        if head.startswith(bom):
            raise CsvTextError(f"encoding: the file is {encoding} (byte-order mark); it must be UTF-8")
    if b"\x00" in head:
        line = head.count(b"\n", 0, head.index(b"\x00")) + 1
        raise CsvTextError("encoding: NUL bytes, so not UTF-8 text (UTF-16 without a byte-order mark?)", line)


def _diagnose(path: Path, exc: Exception) -> CsvTextError:
    """The line and cause of a failed read: bytes that are not UTF-8, a quote never closed, a
    row with more fields than the header; else the reader's own message, shortened."""
    bad_byte_line = _first_line_not_utf8(path)
    if bad_byte_line is not None:
        return CsvTextError("encoding: bytes that are not UTF-8", bad_byte_line)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)
        record_start = 1
        try:
            header = next(reader, [])
            record_start = reader.line_num + 1
            for record in reader:
                if record and len(record) > len(header):
                    return CsvTextError(f"{len(record)} fields where the header has {len(header)}", record_start)
                record_start = reader.line_num + 1
        except csv.Error as error:
            if "end of data" in str(error):
                return CsvTextError("a quoted value is never closed (unterminated quote)", record_start)
            return CsvTextError(shorten(str(error)), record_start)
    return CsvTextError(shorten(str(exc)))


def _first_line_not_utf8(path: Path) -> int | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                return line + chunk.count(b"\n", 0, max(error.start, 0))
            line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return line
    return None
