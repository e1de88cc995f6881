"""The keys of the stored event_ids (docs/data-model.md#event-keys): `usage_event_keys` holds
one row (partition_date, hash(event_id)) per usage_events row, so that the ingest looks for
earlier copies of a delivery's events among 8-byte keys instead of every stored event_id
string, and compares the strings only where a key matched (usage/sql/store_delivery.sql). A
key shared by two different event_ids is a candidate the comparison drops, never a copy.

The writers of usage_events keep the keys in step in the same transaction: the ingest
refreshes the keys of every delivery day it touched (usage/sql/refresh_event_keys.sql),
retention removes one key row per purged event (lifecycle/sql/retention.sql).

DuckDB's hash() is fast but not promised stable across DuckDB versions. The keys are built
together with the key some fixed strings (CANARIES) had then, in usage_event_key_canary; a
read-write open (migrations.upgrade) rebuilds them when hash() gives those strings another key.
"""

from __future__ import annotations

import duckdb

# Fixed strings, short (inlined by DuckDB) and long, whose keys tell whether hash() changed.
CANARIES = ("evt-0", "cs_pipeline usage_event_keys canary: 2025-11-27T00:00:00Z/account-000001")


def made_by_this_hash(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether usage_event_keys was built by the hash() of this DuckDB (every canary gives its stored key)."""
    [(matching,)] = con.execute(
        "SELECT count(*) FROM usage_event_key_canary WHERE hash(canary) = event_key AND canary IN ?", [list(CANARIES)]
    ).fetchall()
    return matching == len(CANARIES)


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Builds usage_event_keys from usage_events and records the canaries' keys (in the
    caller's transaction)."""
    con.execute("DELETE FROM usage_event_keys")
    con.execute("INSERT INTO usage_event_keys SELECT partition_date, hash(event_id) FROM usage_events")
    con.execute("DELETE FROM usage_event_key_canary")
    con.execute(
        "INSERT INTO usage_event_key_canary SELECT canary, hash(canary) FROM unnest(?) t(canary)", [list(CANARIES)]
    )
