"""The schema upgrade to versioned CRM snapshots (tables.CRM_VERSIONS): a warehouse that holds
the CRM as one full copy per snapshot date (several dates, with changes and unchanged days)
is upgraded with nothing lost: the same snapshot in force on every date, the same versions
as a warehouse that stored them as versions from the start, the same public tables, and the
next day's run gives the tables it gives there."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from cs_pipeline import cli, migrations, tables
from cs_pipeline.crm.upgrade import REPLACED
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.snapshots import full_copies
from cs_pipeline_tests.support.tenant import write_generated_tenant
from cs_pipeline_tests.support.versions import version_1_columns
from cs_pipeline_tests.support.warehouse import rows, table

FIRST, LAST = date(2025, 11, 1), date(2025, 11, 9)  # the generator exports the CRM on the 1st, 8th and 9th
MAIN_SCHEMA = (Path(__file__).parents[1] / "fixtures" / "main_schema_v1.sql").read_text()


def contents(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    return sorted(con.execute(query).fetchall(), key=repr)


def version_rows(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple]:
    return contents(con, f"SELECT * EXCLUDE (run_id) FROM {name}")


def copies_warehouse(path: Path, source: Path) -> None:
    """`source`'s rows in a warehouse of schema version 1 (main's schema, no schema_version), the
    CRM as full copies per snapshot date, as the code before versions left it."""
    with duckdb.connect(str(path)) as con:
        con.execute(MAIN_SCHEMA)
        con.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        custom = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'source' "
            "AND table_name = 'account_metrics' EXCEPT SELECT column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_name = 'account_metrics'"
        ).fetchall()
        custom = [name for (name,) in custom if not tables.TABLES["account_metrics"].has(name)]
        for name in custom:  # the config's custom metrics, added as the pipeline adds them
            con.execute(f'ALTER TABLE account_metrics ADD COLUMN "{name}" DOUBLE')
        for t in tables.tables_at(1):
            if t.until is None and t.name != migrations.VERSION_TABLE:
                names = version_1_columns(t) + [f'"{n}"' for n in (custom if t.name == "account_metrics" else [])]
                con.execute(f"INSERT INTO main.{t.name} BY NAME SELECT {', '.join(names)} FROM source.{t.name} d")
        for versioned, copies in REPLACED.items():
            con.execute(f"INSERT INTO main.{copies} BY NAME {full_copies(versioned, 'source')}")


V1_PUBLIC = [t for t in tables.tables_at(1) if t.public]


@pytest.mark.e2e
def test_full_copies_become_the_versions_with_the_same_snapshot_on_every_date(tmp_path, dagster_home):
    tenant = write_generated_tenant(tmp_path / "tenant", end_date=LAST, days=9, accounts=12)
    end = LAST - timedelta(days=1)
    assert cli.main(["--config", str(tenant), "backfill", "--start", str(FIRST), "--end", str(end)]) == 0
    stored = tenant.parent / "warehouse.duckdb"

    upgraded_tenant = tmp_path / "upgraded"
    shutil.copytree(tenant.parent, upgraded_tenant, ignore=shutil.ignore_patterns("warehouse.duckdb*", "published"))
    path = upgraded_tenant / "warehouse.duckdb"
    copies_warehouse(path, stored)
    with duckdb.connect(str(path), read_only=True) as con:
        copied = {name: contents(con, f"SELECT * FROM {name}") for name in REPLACED.values()}
        # the public tables of version 1 with their columns then (later versions append theirs)
        shape = {t.name: [c for c, *_ in con.execute(f"DESCRIBE {t.name}").fetchall()] for t in V1_PUBLIC}
        public = {name: contents(con, f"SELECT {', '.join(shape[name])} FROM {name}") for name in shape}
        # days of several snapshots: the CRM changed on the 8th only, the other days are copies
        dates = con.execute("SELECT DISTINCT snapshot_date FROM account_snapshots ORDER BY 1").fetchall()
        assert dates == [(FIRST + timedelta(days=n),) for n in range(8)]
        [(changed,)] = con.execute(
            "SELECT count(*) FROM (SELECT * EXCLUDE (snapshot_date, run_id) FROM crm_accounts_raw "
            "WHERE snapshot_date = ? EXCEPT ALL SELECT * EXCLUDE (snapshot_date, run_id) FROM crm_accounts_raw "
            "WHERE snapshot_date = ?)",
            [end, end - timedelta(days=1)],
        ).fetchall()
        assert changed > 0
    # users behind the events, as a retention purge or a killed run leaves it for the next refresh
    with duckdb.connect(str(path)) as con:
        dropped = con.execute(
            "DELETE FROM users WHERE (account_id, user_id) IN (SELECT (account_id, user_id) FROM users "
            "WHERE first_seen IS NOT NULL ORDER BY ALL LIMIT 3) RETURNING account_id"
        ).fetchall()
        assert len(dropped) == 3

    with connect(path) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(migrations.LATEST,)]
        present = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert not present & set(REPLACED.values())
        # nothing lost: each date's full copy is the rows in force on it
        con.execute(f"ATTACH '{stored}' AS stored (READ_ONLY)")
        for versioned, copies in REPLACED.items():
            assert contents(con, full_copies(versioned)) == copied[copies], versioned
            # the same versions as storing them as versions day by day made
            assert version_rows(con, versioned) == version_rows(con, f"stored.{versioned}"), versioned
        # the same dates; what they were made from is not known for the copies (schema version 6)
        dates = "SELECT * EXCLUDE (run_id, fingerprint) FROM {}snapshot_dates"
        assert contents(con, dates.format("")) == contents(con, dates.format("stored."))
        assert con.execute("SELECT count(fingerprint) FROM snapshot_dates").fetchall() == [(0,)]
        unchanged = {name for name in public if name != "users"}
        for name in unchanged:
            assert contents(con, f"SELECT {', '.join(shape[name])} FROM {name}") == public[name], name
        assert contents(con, "SELECT * FROM user_contacts") == contents(con, "SELECT * FROM stored.user_contacts")
        [(queued,)] = con.execute("SELECT count(*) FROM user_day_changes").fetchall()
        assert queued >= 1  # the users rows deleted above, to be written again

    # the next day on both: the same tables
    assert cli.main(["--config", str(tenant), "materialize", "--date", str(LAST)]) == 0
    assert cli.main(["--config", str(upgraded_tenant / "cs_pipeline.yaml"), "materialize", "--date", str(LAST)]) == 0
    for name in [*tables.PUBLIC_TABLES, *REPLACED]:
        if name != "account_metrics":
            assert table(path, name) == table(stored, name), name
    # the dates; the next day's made from the same files, config and code on both
    dates = "SELECT * EXCLUDE (run_id, fingerprint) FROM snapshot_dates ORDER BY ALL"
    assert rows(path, dates) == rows(stored, dates)
    newest = "SELECT asset, fingerprint FROM snapshot_dates WHERE snapshot_date = ? ORDER BY ALL"
    assert rows(path, newest, [LAST]) == rows(stored, newest, [LAST])
    assert None not in {fingerprint for _, fingerprint in rows(path, newest, [LAST])}
    # account_metrics by name: the upgrade appended the metrics added since version 1, without a
    # value on the days before it; the next day has them all
    added = [c.name for c in tables.TABLES["account_metrics"].ordered() if c.since > 1]
    kept = [c for (c, *_) in rows(stored, "DESCRIBE account_metrics") if c not in {"run_id", *added}]
    for name in kept:  # column by column, so that a difference names its column
        older = f"SELECT date, account_id, {name} FROM account_metrics WHERE date < ? ORDER BY ALL"
        assert rows(path, older, [LAST]) == rows(stored, older, [LAST]), name
    assert rows(path, f"SELECT {', '.join(added)} FROM account_metrics WHERE date < ?", [LAST]) == [(None,)] * len(
        rows(path, "SELECT 1 FROM account_metrics WHERE date < ?", [LAST])
    )
    names = sorted(c for (c, *_) in rows(stored, "DESCRIBE account_metrics") if c != "run_id")
    newest = f"SELECT {', '.join(names)} FROM account_metrics WHERE date = ? ORDER BY ALL"
    assert rows(path, newest, [LAST]) == rows(stored, newest, [LAST])
    for name in ("user_contacts", "user_day_changes"):
        assert rows(path, f"SELECT * FROM {name} ORDER BY ALL") == rows(stored, f"SELECT * FROM {name} ORDER BY ALL")
