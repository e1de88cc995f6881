"""Where CRM records come from: a directory of CSV exports, or Salesforce itself.

Every source answers the same question — the live records of one Salesforce object, as
text columns named by their Salesforce field names — so the snapshot asset does not care
which one it has. A directory may also hold dated exports, one full export per
`date=YYYY-MM-DD/` folder: day D's snapshot then reads the newest one dated on or before D.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from cs_pipeline.lib.input_files import CsvTextError, InputFileError, read_csv_text, shorten


class CrmSourceError(ValueError):
    """The source cannot deliver what the mapping asks for; names the object and field.
    Retrying does not help: the input has to change."""


class CrmExportError(InputFileError, CrmSourceError):
    """A CRM export file that cannot be used as it is."""

    label = "CRM export"


@dataclass(frozen=True)
class SnapshotReading:
    """What day D's snapshot is read from: a source, what to say about it in the snapshot's
    metadata, and a warning for the run's log (None when all is as expected)."""

    source: CrmSource
    metadata: dict[str, str] = field(default_factory=dict)
    warning: str | None = None


class CrmSource(dg.ConfigurableResource, ABC):
    """Where the CRM records come from (export files or Salesforce mirrors): the `crm` resource."""
    def as_of(self, day: date) -> SnapshotReading:
        """The source that holds day `day`'s snapshot. A source without history (Salesforce,
        a folder of undated CSV files) is itself: it holds what the CRM holds now."""
        return SnapshotReading(self)

    @abstractmethod
    def fetch(self, object_name: str, fields: list[str], optional_fields: list[str]) -> pl.DataFrame:
        """The object's live (not deleted) records with every field of `fields` (an error
        if one does not exist) and of `optional_fields` (null where the source lacks it)."""

    def content_digest(self, object_names: list[str]) -> str | None:
        """A digest of what `fetch` would read for `object_names`: equal digests, equal records.
        None when the source cannot tell without reading its records (Salesforce's mirrors): its
        snapshot is then always read and compared."""
        return None


class CrmFilesSource(CrmSource):
    """A directory holding `Account.csv`, `Asset.csv`, `Contact.csv` (docs/data-model.md#crm-export-files): a full
    snapshot of the CRM. `Account.csv` is required; a missing `Asset.csv` or `Contact.csv`
    means the CRM has no such records. Or a directory of dated exports, one such snapshot
    per `date=YYYY-MM-DD/` folder (`as_of` picks one)."""

    files_dir: str

    def as_of(self, day: date) -> SnapshotReading:
        """The newest dated export on or before `day` (none: the oldest); the folder itself without dated exports."""
        exports = dated_exports(Path(self.files_dir))
        if not exports:
            return SnapshotReading(self, {"export_folder": self.files_dir})
        earlier = [export_date for export_date in exports if export_date <= day]
        chosen = max(earlier) if earlier else min(exports)
        folder = exports[chosen]
        warning = (
            None
            if earlier
            else f"no CRM export dated on or before {day} in {self.files_dir}: the oldest, {folder.name}, is used"
        )
        return SnapshotReading(
            CrmFilesSource(files_dir=str(folder)),
            {"export_date": chosen.isoformat(), "export_folder": str(folder), "exports_available": str(len(exports))},
            warning,
        )

    def content_digest(self, object_names: list[str]) -> str | None:
        """The digest of the bytes of each `<object_name>.csv` (or that it is absent), whatever
        their names' dates and sizes: a copy keeps its mtime, an edited file may keep its size."""
        found = hashlib.blake2b(digest_size=16)
        for object_name in object_names:
            path = self._path(object_name)
            found.update(f"{object_name}.csv\0".encode())
            if not path.is_file():  # as fetch sees it: it says what is missing, if it is required
                found.update(b"absent")
                continue
            try:
                with path.open("rb") as handle:  # SHA-256: about half BLAKE2b's time (hardware instructions)
                    found.update(hashlib.file_digest(handle, "sha256").digest())
            except OSError as exc:
                raise CrmExportError(path, f"cannot be read: {shorten(exc.strerror or str(exc))}") from exc
        return found.hexdigest()

    def _path(self, object_name: str) -> Path:
        return Path(self.files_dir) / f"{object_name}.csv"

    def fetch(self, object_name: str, fields: list[str], optional_fields: list[str]) -> pl.DataFrame:
        """The rows of `<object_name>.csv`, with `fields` (and those of `optional_fields` it has)."""
        path = self._path(object_name)
        wanted = list(dict.fromkeys([*fields, *optional_fields]))
        if not path.is_file():
            if object_name == "Account":
                raise CrmExportError(path, "does not exist (Account.csv is required)")
            return pl.DataFrame(schema={name: pl.String for name in wanted})
        try:
            records = read_csv_text(path)
        except CsvTextError as exc:
            raise CrmExportError(path, exc.cause, exc.line) from exc
        except OSError as exc:
            raise CrmExportError(path, f"cannot be read: {shorten(exc.strerror or str(exc))}") from exc
        records = records.rename({name: name.strip() for name in records.columns})
        missing = [name for name in fields if name not in records.columns]
        if missing:
            raise CrmExportError(
                path,
                f"has no column {', '.join(missing)} (mapped in the config's crm.mapping; "
                f"columns present: {shorten(', '.join(records.columns))})",
            )
        if "IsDeleted" in records.columns:
            records = records.filter(
                pl.col("IsDeleted").str.strip_chars().str.to_lowercase().is_in(["true", "1"]).fill_null(False).not_()
            )
        return records.select(
            pl.col(name) if name in records.columns else pl.lit(None, dtype=pl.String).alias(name) for name in wanted
        )


DATED_PREFIX = "date="
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def dated_exports(files_dir: Path) -> dict[date, Path]:
    """The dated export folders of `files_dir` by date; empty when it holds none (its CSV files
    are then the export itself). A `date=` entry that is not a folder named by a real date
    (`date=2026-02-30`, `date=2026-1-5`), or dated folders beside loose CSV files, is an error
    naming the entry: either would silently change which export a day reads."""
    try:
        entries = sorted(files_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return {}  # reading Account.csv then says what is missing
    except OSError as exc:
        raise CrmExportError(files_dir, f"cannot be listed: {shorten(exc.strerror or str(exc))}") from exc
    exports: dict[date, Path] = {}
    for entry in entries:
        if not entry.name.startswith(DATED_PREFIX):
            continue
        text = entry.name.removeprefix(DATED_PREFIX)
        try:
            export_date = date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
        except ValueError:
            export_date = None
        if export_date is None:
            raise CrmExportError(entry, "is not named date=YYYY-MM-DD with a real date (a dated CRM export folder)")
        if not entry.is_dir():
            raise CrmExportError(entry, "is not a folder (a dated CRM export is a folder of CSV files)")
        exports[export_date] = entry
    if exports:
        loose = [entry.name for entry in entries if entry.name.lower().endswith(".csv") and not entry.is_dir()]
        if loose:
            raise CrmExportError(
                files_dir,
                f"holds both dated export folders ({shorten(', '.join(path.name for path in exports.values()))}) and "
                f"loose CSV files ({shorten(', '.join(loose))}): crm.files_dir holds either the CSV files of "
                "one export or date=YYYY-MM-DD/ folders, each a full export, not both",
            )
    return exports
