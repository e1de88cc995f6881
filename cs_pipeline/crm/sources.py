"""Where CRM records come from: a directory of CSV exports, or Salesforce itself.

Every source answers the same question — the live records of one Salesforce object, as
text columns named by their Salesforce field names — so the snapshot asset does not care
which one it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class CrmSource(dg.ConfigurableResource, ABC):
    @abstractmethod
    def fetch(self, object_name: str, fields: list[str], optional_fields: list[str]) -> pl.DataFrame:
        """The object's live (not deleted) records with every field of `fields` (an error
        if one does not exist) and of `optional_fields` (null where the source lacks it)."""


class CrmFilesSource(CrmSource):
    """A directory holding `Account.csv`, `Asset.csv`, `Contact.csv` (docs/data-model.md#crm-export-files): a full
    snapshot of the CRM. `Account.csv` is required; a missing `Asset.csv` or `Contact.csv`
    means the CRM has no such records."""

    files_dir: str

    def fetch(self, object_name: str, fields: list[str], optional_fields: list[str]) -> pl.DataFrame:
        path = Path(self.files_dir) / f"{object_name}.csv"
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
