"""The event_id probe through 64-bit keys against the probe of every stored event_id string
(README: "The event_id probe through 64-bit keys").

In a scratch DuckDB file of the registry's usage_events (DuckDB's memory limit as the
pipeline's), it stores `--events-per-day` events a day (4 ids in 5 'evt-YYYYMMDD-n' as the
bench generator writes them, 1 in 5 an md5 hex as staging makes them for files without ids)
and their keys, up to each history length of `--days`; at each, a delivery of the next day
(its own ids and 1.5 % of the previous day's) is probed `--rounds` times by each probe,
alternately: the strings as the ingest did before the keys, the keys as usage/sql/
store_delivery.sql does now (both find the same rows, checked). Then the key refresh of a day
(refresh_event_keys.sql's statements), rolled back. Prints wall and process CPU seconds
(all threads: what other processes on the machine move least) and the sizes.

    python bench/event_key_probe.py --days 10 30 90 [--events-per-day 2000000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from cs_pipeline import tables
from cs_pipeline.warehouse import MEMORY_LIMIT

FIRST_DAY = "DATE '2025-06-01'"

STRING_PROBE = (
    "CREATE OR REPLACE TEMP TABLE string_matches AS "
    "SELECT e.rowid AS stored_rowid FROM usage_events e SEMI JOIN delivered d ON e.event_id = d.event_id"
)
KEY_PROBE = (
    "CREATE OR REPLACE TEMP TABLE candidate_keys AS SELECT k.partition_date, k.event_key "
    "FROM usage_event_keys k SEMI JOIN delivered d ON k.event_key = hash(d.event_id)",
    "CREATE OR REPLACE TEMP TABLE key_matches AS SELECT e.rowid AS stored_rowid FROM usage_events e "
    "SEMI JOIN (SELECT c.partition_date, d.event_id FROM delivered d JOIN candidate_keys c "
    "ON hash(d.event_id) = c.event_key) m ON e.partition_date = m.partition_date AND e.event_id = m.event_id",
)
KEY_REFRESH = (
    "DELETE FROM usage_event_keys WHERE partition_date IN (SELECT partition_date FROM touched_partitions)",
    "INSERT INTO usage_event_keys SELECT partition_date, hash(event_id) FROM usage_events "
    "WHERE partition_date IN (SELECT partition_date FROM touched_partitions)",
)


def event_ids(day: int, first: int, count: int) -> str:
    """The SELECT of `count` event_ids of day `day` (0-based) from sequence number `first`, as `i`."""
    return (
        f"SELECT i, CASE WHEN (i // 100000) % 5 = 4 THEN md5('{day}-' || i) "
        f"ELSE 'evt-' || strftime({FIRST_DAY} + {day}, '%Y%m%d') || '-' || i END AS event_id "
        f"FROM range({first}, {first} + {count}) t(i)"
    )


def store_days(con: duckdb.DuckDBPyConnection, first: int, last: int, per_day: int) -> None:
    for day in range(first, last):
        con.execute(f"""
            INSERT INTO usage_events
            SELECT event_id,
                TIMESTAMPTZ '2025-06-01 00:00:00+00' + INTERVAL ({day}) DAY + INTERVAL (i // 25) MILLISECOND,
                {FIRST_DAY} + {day}, 'acct-' || (i * 7919 % 100000), 'user-' || (i % 20) || '@x.com',
                'm' || (i % 12), 'a' || (i % 40), {FIRST_DAY} + {day}, 'events-' || (i // 100000) || '.parquet',
                i % 100000 + 1, 'bench'
            FROM ({event_ids(day, 0, per_day)})""")
        con.execute(f"""INSERT INTO usage_event_keys SELECT partition_date, hash(event_id) FROM usage_events
            WHERE partition_date = {FIRST_DAY} + {day}""")
    con.execute("CHECKPOINT")


def timed(con: duckdb.DuckDBPyConnection, statements: tuple[str, ...]) -> tuple[float, float]:
    """Wall and process CPU seconds of the statements."""
    wall, cpu = time.perf_counter(), time.process_time()
    for statement in statements:
        con.execute(statement)
    return time.perf_counter() - wall, time.process_time() - cpu


def mebibytes(con: duckdb.DuckDBPyConnection, table: str, column: str | None = None) -> int:
    only = f" AND column_name = '{column}'" if column else ""
    [(blocks,)] = con.execute(
        f"SELECT count(DISTINCT block_id) FROM pragma_storage_info('{table}') WHERE block_id >= 0{only}"
    ).fetchall()
    return blocks * 256 // 1024  # DuckDB's blocks are 256 KiB


def measure(con: duckdb.DuckDBPyConnection, days: int, per_day: int, rounds: int) -> dict[str, object]:
    redelivered = per_day * 3 // 200
    con.execute(f"""CREATE OR REPLACE TEMP TABLE delivered AS
        SELECT event_id FROM ({event_ids(days, 0, per_day * 119 // 100 - redelivered)})
        UNION ALL SELECT event_id FROM ({event_ids(days - 1, 0, redelivered)})""")
    runs: dict[str, list[tuple[float, float]]] = {"strings": [], "keys": []}
    for round_ in range(rounds):
        order = ("strings", "keys") if round_ % 2 == 0 else ("keys", "strings")
        for probe in order:
            runs[probe].append(timed(con, (STRING_PROBE,) if probe == "strings" else KEY_PROBE))
    [(found, same)] = con.execute(
        "SELECT count(*), count(*) = (SELECT count(*) FROM key_matches) "
        "AND NOT EXISTS (SELECT stored_rowid FROM string_matches EXCEPT SELECT stored_rowid FROM key_matches) "
        "FROM string_matches"
    ).fetchall()
    if not same:
        raise SystemExit(f"the key probe found other rows than the string probe at {days} days")
    con.execute(f"CREATE OR REPLACE TEMP TABLE touched_partitions AS SELECT {FIRST_DAY} + {days - 1} AS partition_date")
    con.execute("BEGIN")
    refresh = timed(con, KEY_REFRESH)
    con.execute("ROLLBACK")
    return {
        "days": days,
        "found": found,
        **{
            f"{probe} {kind}": statistics.median(r[i] for r in runs[probe])
            for probe in runs
            for i, kind in enumerate(("wall", "CPU"))
        },
        "refresh CPU": refresh[1],
        "keys MiB": mebibytes(con, "usage_event_keys"),
        "event_id MiB": mebibytes(con, "usage_events", "event_id"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs="+", default=[10, 30, 90], help="history lengths, ascending")
    parser.add_argument("--events-per-day", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workdir", type=Path, help="where the scratch file goes (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        con = duckdb.connect(str(Path(scratch) / "history.duckdb"), config={"memory_limit": MEMORY_LIMIT})
        con.execute("SET TimeZone = 'UTC'")
        con.execute(tables.TABLES["usage_events"].create_statement())
        con.execute(tables.TABLES["usage_event_keys"].create_statement())
        print(
            "| history | found | strings: wall / CPU s | keys: wall / CPU s | key refresh CPU s "
            "| keys / strings (CPU) | keys MiB | event_id MiB |\n|---|---|---|---|---|---|---|---|",
            flush=True,
        )
        stored = 0
        for days in sorted(args.days):
            store_days(con, stored, days, args.events_per_day)
            stored = days
            m = measure(con, days, args.events_per_day, args.rounds)
            ratio = (m["keys CPU"] + m["refresh CPU"]) / m["strings CPU"]
            print(f"| {days} days | {m['found']:,} | {m['strings wall']:.2f} / {m['strings CPU']:.2f} | "
                  f"{m['keys wall']:.2f} / {m['keys CPU']:.2f} | {m['refresh CPU']:.2f} | {ratio:.2f} | "
                  f"{m['keys MiB']} | {m['event_id MiB']} |", flush=True)  # fmt: skip
        con.close()


if __name__ == "__main__":
    main()
