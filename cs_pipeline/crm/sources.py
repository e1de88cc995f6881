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


class CrmSourceError(ValueError):
    """The source cannot deliver what the mapping asks for; names the object and field."""


class CrmSource(dg.ConfigurableResource, ABC):
    @abstractmethod
    def fetch(self, object_name: str, fields: list[str], optional_fields: list[str]) -> pl.DataFrame:
        """The object's live (not deleted) records with every field of `fields` (an error
        if one does not exist) and of `optional_fields` (null where the source lacks it)."""


class CrmFilesSource(CrmSource):
    """A directory holding `Account.csv`, `Asset.csv`, `Contact.csv` (SPEC 3.2): a full
    snapshot of the CRM. `Account.csv` is required; a missing `Asset.csv` or `Contact.csv`
    means the CRM has no such records."""

    files_dir: str

    def fetch(self, object_name: str, fields: list[str], optional_fields: list[str]) -> pl.DataFrame:
        path = Path(self.files_dir) / f"{object_name}.csv"
        wanted = list(dict.fromkeys([*fields, *optional_fields]))
        if not path.is_file():
            if object_name == "Account":
                raise CrmSourceError(f"CRM export {path} does not exist (Account.csv is required)")
            return pl.DataFrame(schema={name: pl.String for name in wanted})
        try:
            records = pl.read_csv(path, infer_schema=False)
        except Exception as exc:  # polars raises several error types for unreadable input
            raise CrmSourceError(f"CRM export {path} cannot be read: {exc}") from exc
        records = records.rename({name: name.strip() for name in records.columns})
        missing = [name for name in fields if name not in records.columns]
        if missing:
            raise CrmSourceError(
                f"CRM export {path} has no column {', '.join(missing)} "
                f"(mapped in the config's crm.mapping; columns present: {', '.join(records.columns)})"
            )
        if "IsDeleted" in records.columns:
            records = records.filter(
                pl.col("IsDeleted").str.strip_chars().str.to_lowercase().is_in(["true", "1"]).fill_null(False).not_()
            )
        return records.select(
            pl.col(name) if name in records.columns else pl.lit(None, dtype=pl.String).alias(name) for name in wanted
        )
