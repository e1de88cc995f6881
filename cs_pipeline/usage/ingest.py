"""Ingesting one day's delivery of usage events into the warehouse (docs/data-model.md#usage-events-landing-zone).

Python reads the files; everything row-level happens in the SQL files under
`sql/usage/`, inside one transaction, so a failed run leaves the warehouse unchanged. The
same transaction rebuilds the event keys (usage_event_keys, cs_pipeline/event_keys.py) and the
daily aggregates (usage_account_days, usage_user_days) of every delivery day whose stored
events it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from cs_pipeline import publish, schemas
from cs_pipeline.transactions import transaction
from cs_pipeline.usage.landing import list_delivery, read_delivery
from cs_pipeline.warehouse import read_sql, set_variables

# The most characters an event_id, account_id, user_id, module or action may have; a longer
# one is no ID but a mistake (a document pasted into a field): its row is `field_too_long`.
FIELD_LENGTH_LIMIT = 1000


@dataclass(frozen=True)
class IngestResult:
    """What ingest_delivery read, stored, rejected and reconciled for one delivery day."""
    partition_date: date
    files: int
    files_ignored: list[str]
    rows_read: int
    events_stored: int  # rows of this delivery that are now the stored copy of their event
    duplicates: int  # accepted rows whose event_id an earlier delivery already holds
    purged_by_retention: int  # accepted rows of accounts whose events retention purged through their day
    late_events: int  # stored rows of this delivery dated before the partition date
    rejected: dict[str, int] = field(default_factory=dict)
    moved_beyond_limits: int = 0  # stored events that this delivery's values pushed beyond the limits
    readmitted_within_limits: int = 0  # limit-rejected rows that are events again

    @property
    def rows_rejected(self) -> int:
        """The rows rejected, all reasons together."""
        return sum(self.rejected.values())


def ingest_delivery(
    con: duckdb.DuckDBPyConnection,
    *,
    landing: Path,
    partition_date: date,
    module_limit: int,
    action_limit: int,
    run_id: str,
) -> IngestResult:
    """Ingests the delivery of `partition_date` into usage_events (bad rows into rejected_events), in one
    transaction."""
    delivery = list_delivery(landing, partition_date)
    set_variables(
        con,
        partition_date=partition_date,
        run_id=run_id,
        module_limit=module_limit,
        action_limit=action_limit,
        field_length_limit=FIELD_LENGTH_LIMIT,
    )
    # one transaction: a failure, a Polars panic included, leaves no half-written day
    with transaction(con):
        # string views: Arrow shares the frame's buffers (the default large strings are a copy)
        _stage(con, read_delivery(delivery).to_arrow(compat_level=pl.CompatLevel.newest()))
        con.execute(read_sql("usage/apply_limits.sql"))
        con.execute(read_sql("usage/store_delivery.sql"))
        moved = readmitted = 0
        [(limits_changed,)] = con.execute("SELECT count(*) > 0 FROM changed_vocabulary").fetchall()
        if limits_changed:
            con.execute(read_sql("usage/reconcile_limits.sql"))
            [(moved, readmitted)] = con.execute(
                "SELECT count(*) FILTER (origin <> 'rejected' AND reason IS NOT NULL), "
                "count(*) FILTER (origin = 'rejected' AND reason IS NULL) FROM limit_judged"
            ).fetchall()
        con.execute(read_sql("usage/refresh_event_keys.sql"))
        con.execute(read_sql("usage/refresh_aggregates.sql"))
        for table in ("usage_events", "rejected_events"):  # every delivery day this run changed
            publish.queue_query(con, table, "SELECT partition_date FROM touched_partitions")
        result = _summarise(con, delivery_files=len(delivery.files), partition_date=partition_date)
    return IngestResult(
        **result,
        files_ignored=[p.name for p in delivery.ignored],
        moved_beyond_limits=moved,
        readmitted_within_limits=readmitted,
    )


def _stage(con: duckdb.DuckDBPyConnection, delivery: pa.Table) -> None:
    """Normalise the delivery into `staged` (stage_delivery.sql). The delivery (about 0.5 GB
    for 2 million rows) is released before the statements that follow: a lower peak memory."""
    con.register("delivery", delivery)
    try:
        con.execute(read_sql("usage/stage_delivery.sql"))
    finally:
        con.unregister("delivery")


def duplicate_event_ids(con: duckdb.DuckDBPyConnection, partition_date: date, *, shown: int = 5) -> list[str]:
    """Up to `shown` event_ids stored more than once in the partition (none: the ingest's promise)."""
    rows = con.execute(
        "SELECT event_id FROM usage_events WHERE partition_date = ? "
        "GROUP BY event_id HAVING count(*) > 1 ORDER BY event_id LIMIT ?",
        [partition_date, shown],
    ).fetchall()
    return [event_id for (event_id,) in rows]


def _summarise(con: duckdb.DuckDBPyConnection, *, delivery_files: int, partition_date: date) -> dict:
    [(rows_read, accepted)] = con.execute("SELECT count(*), count(*) FILTER (reason IS NULL) FROM staged").fetchall()
    [(stored, late)] = con.execute(
        "SELECT count(*), count(*) FILTER (event_date < ?) FROM usage_events WHERE partition_date = ?",
        [partition_date, partition_date],
    ).fetchall()
    [(purged,)] = con.execute(
        "SELECT count(*) FROM staged s SEMI JOIN retention_log r "
        "ON r.account_id = s.account_id AND s.event_date <= r.purged_through WHERE s.reason IS NULL"
    ).fetchall()
    rejected = dict(
        con.execute(
            "SELECT reason, count(*) FROM staged WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason"
        ).fetchall()
    )
    return {
        "partition_date": partition_date,
        "files": delivery_files,
        "rows_read": rows_read,
        "events_stored": stored,
        "duplicates": accepted - stored - purged,
        "purged_by_retention": purged,
        "late_events": late,
        "rejected": {reason: rejected.get(reason, 0) for reason in schemas.REJECT_REASONS},
    }
