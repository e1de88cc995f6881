"""The table registry (cs_pipeline/tables.py) and the versioned migrations
(cs_pipeline/migrations.py): the DDL the registry makes is what the warehouse reports, a
warehouse made by the code before versions is upgraded in place without losing a row, one of
a newer version is refused, and every public table keeps the names and types users know."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_pipeline import migrations, publish, schemas, tables
from cs_pipeline.crm.upgrade import REPLACED
from cs_pipeline.vocabulary import Metric
from cs_pipeline.warehouse import (
    SchemaVersionError,
    WarehouseOutdated,
    WarehouseResource,
    WarehouseTooNew,
    connect,
    table_schema,
)
from cs_pipeline_tests.support.snapshots import full_copies
from cs_pipeline_tests.support.tenant import write_events_csv, write_tenant
from cs_pipeline_tests.support.versions import DROPPED_SINCE_1, version_1_columns
from cs_pipeline_tests.support.warehouse import bit_set_values

FIXTURES = Path(__file__).parent / "fixtures"
# main's sql/warehouse/schema.sql before schema versions (git show main:sql/warehouse/schema.sql)
MAIN_SCHEMA = (FIXTURES / "main_schema_v1.sql").read_text()
# DESCRIBE (name, type) of every public table in main's warehouse and published layer
# what main's schema.sql made, schema_version aside (later tables come with their migration)
VERSION_1_TABLES = [t for t in tables.tables_at(1) if t.name != migrations.VERSION_TABLE]
MAIN_PUBLIC_TABLES = json.loads((FIXTURES / "public_tables_main.json").read_text())
# the schema version of main that wrote public_tables_main.json; a public table added since is
# pinned there as its version created it
MAIN_VERSION = 2


def event(event_id: str, ts: str, account_id: str, action: str = "Login", **extra: str) -> dict[str, str]:
    return {"event_id": event_id, "ts": ts, "account_id": account_id, "action": action, **extra}


@pytest.fixture(scope="module")
def tenant(tmp_path_factory) -> Path:
    """The appendix tenant run by the CLI over two days (the run the snapshot of main was taken
    from): returns its config; the warehouse and published/ are beside it."""
    root = tmp_path_factory.mktemp("tenant")
    config = write_tenant(root)
    landing = root / "landing"
    write_events_csv(landing, "2025-11-20", "a.csv", [
        event("e1", "2025-11-20T10:00:00Z", "XYZ", "Send invoice", user_id="Ann@Acme.com", module="Billing"),
        event("e2", "2025-11-20T23:30:00-05:00", "ABC_Widget2", user_id="bob@acme.com"),
    ])  # fmt: skip
    write_events_csv(landing, "2025-11-21", "a.csv", [
        event("e1", "2025-11-20T10:00:00Z", "XYZ", "Send invoice"),
        event("e3", "2025-11-21T08:00:00Z", "ghost", user_id="g1"),
        event("e4", "2025-11-21T08:00:00Z", ""),
    ])  # fmt: skip
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home")}
    done = subprocess.run(
        [sys.executable, "-m", "cs_pipeline.cli", "--config", str(config), "backfill",
         "--start", "2025-11-20", "--end", "2025-11-21"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return config


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str, bool]]:
    """(name, type, nullable) of a table as the warehouse reports it, in table order."""
    return con.execute(
        "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? AND table_catalog = current_database() "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()


def registry_columns(table: tables.Table) -> list[tuple[str, str, bool]]:
    return [(c.name, c.type, c.nullable) for c in table.ordered()]


def versions(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    return con.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()


# --- (c) the registry's DDL is what the warehouse reports -----------------------------------------


def test_a_new_warehouse_has_every_registry_table_as_declared_with_its_comments(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with connect(path) as con:
        stored = {
            name
            for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
        }
        assert stored == set(tables.TABLES)
        for table in tables.TABLE_LIST:
            assert columns(con, table.name) == registry_columns(table), table.name
            comments = dict(
                con.execute(
                    "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = ?", [table.name]
                ).fetchall()
            )
            assert comments == {c.name: c.description for c in table.ordered()}, table.name
            [(comment,)] = con.execute(
                "SELECT comment FROM duckdb_tables() WHERE table_name = ?", [table.name]
            ).fetchall()
            assert comment == table.description
        assert versions(con) == [(migrations.LATEST, f"new warehouse, created at version {migrations.LATEST}")]
    with connect(path) as con:  # opening again applies nothing
        assert len(versions(con)) == 1


def test_version_1_of_the_registry_is_mains_schema():
    main, registry = duckdb.connect(), duckdb.connect()
    main.execute(MAIN_SCHEMA)
    registry.execute(tables.create_statements(version=1))
    for table in tables.TABLE_LIST:
        if table.name != migrations.VERSION_TABLE:
            assert columns(registry, table.name) == columns(main, table.name), table.name


def test_the_published_tables_schemas_and_column_metadata_come_from_the_registry(tmp_path):
    assert publish.PUBLISHED == {name: t.partition for name, t in tables.TABLES.items() if t.public}
    for name in ("accounts", "hierarchy_issues", "users", "usage_events", "rejected_events", "account_metrics"):
        schema = getattr(schemas, name)
        assert list(schema.columns) == tables.TABLES[name].names(), name
    with connect(tmp_path / "warehouse.duckdb") as con:
        con.execute('ALTER TABLE account_metrics ADD COLUMN "logins" DOUBLE')  # a custom metric
        described = table_schema(con, "account_metrics")
    registered = tables.TABLES["account_metrics"]
    assert [c.name for c in described.columns] == [*registered.names(run_id=True), "logins"]
    by_name = {c.name: c for c in described.columns}
    assert by_name["engagement_score"].description == registered.column("engagement_score").description
    assert by_name["engagement_score"].type == "INTEGER" and by_name["engagement_score"].constraints.nullable
    assert not by_name["active_users_30d"].constraints.nullable
    assert by_name["logins"].description == "custom metric (config metrics:)"


# --- (d) the public tables are unchanged for users ------------------------------------------------


@pytest.mark.e2e  # the module's tenant runs a backfill through the CLI
def test_every_public_table_keeps_mains_names_and_types_in_the_warehouse_and_the_published_layer(tenant):
    # the tables and columns as the fixture pins them; columns a later migration adds come after them
    assert set(MAIN_PUBLIC_TABLES) == set(tables.PUBLIC_TABLES)
    with duckdb.connect(str(tenant.parent / "published" / "analytics.duckdb"), read_only=True) as con:
        con.execute(f"ATTACH '{tenant.parent / 'warehouse.duckdb'}' AS warehouse (READ_ONLY)")
        for table, main in MAIN_PUBLIC_TABLES.items():
            pinned = max(MAIN_VERSION, tables.TABLES[table].since)
            added = [[c.name, c.type] for c in tables.TABLES[table].ordered() if c.since > pinned]
            warehouse = [list(row[:2]) for row in con.execute(f"DESCRIBE warehouse.{table}").fetchall()]
            published = [list(row[:2]) for row in con.execute(f"DESCRIBE main.{table}").fetchall()]
            assert warehouse == main["warehouse"] + added, table
            assert published == main["published"] + added, table


# --- (a) a warehouse of the code before versions is upgraded in place ------------------------------


def _main_warehouse(path: Path, source: Path) -> None:
    """A warehouse as main makes it (its schema.sql, no schema_version), holding the rows of a
    real run (copied from `source`) and a custom metric column added as main adds it."""
    with duckdb.connect(str(path)) as con:
        con.execute(MAIN_SCHEMA)
        con.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        for table in VERSION_1_TABLES:
            if table.until is None:
                names = ", ".join(version_1_columns(table))
                con.execute(f"INSERT INTO main.{table.name} BY NAME SELECT {names} FROM source.{table.name} d")
        for versioned, copies in REPLACED.items():  # the CRM, one full copy per snapshot date
            con.execute(f"INSERT INTO main.{copies} BY NAME {full_copies(versioned, 'source')}")
        con.execute('ALTER TABLE account_metrics ADD COLUMN IF NOT EXISTS "logins" DOUBLE')
        con.execute("UPDATE account_metrics SET logins = events_30d")


def _contents(con: duckdb.DuckDBPyConnection, table: str, names: list[str] | None = None) -> list[tuple]:
    selected = ", ".join(names) if names else "*"
    return sorted(con.execute(f"SELECT {selected} FROM {table}").fetchall(), key=repr)


def _added_since_1(table: str) -> list[str]:
    return [c.name for c in tables.TABLES[table].ordered() if c.since > 1]


# columns added after version 1 that the migration fills from the rows before
_FILLED = {("usage_account_days", "module_bits"), ("usage_account_days", "action_bits")}


@pytest.mark.e2e  # the module's tenant runs a backfill through the CLI
def test_a_warehouse_of_the_code_before_versions_is_upgraded_in_place_without_losing_a_row(tenant, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    _main_warehouse(path, tenant.parent / "warehouse.duckdb")
    with duckdb.connect(str(path), read_only=True) as con:
        # the CRM's copies become versions: cs_pipeline_tests/crm/test_upgrade.py
        before = {t.name: _contents(con, t.name) for t in VERSION_1_TABLES if t.until is None}
        shape = {name: columns(con, name) for name in before}
        modules_before = _contents(
            con, "usage_account_days", ["partition_date", "event_date", "account_id", "events", "list_sort(modules)"]
        )
    assert sum(len(rows) for rows in before.values()) > 50 and before["account_metrics"]

    with connect(path) as con:
        assert [v for v, _ in versions(con)] == list(range(1, migrations.LATEST + 1))
        assert versions(con)[0][1] == migrations.MIGRATIONS[0].description
        for name, rows in before.items():
            kept = [column for column, _type, _nullable in shape[name] if (name, column) not in DROPPED_SINCE_1]
            positions = [i for i, (column, _type, _nullable) in enumerate(shape[name]) if column in kept]
            kept_rows = sorted((tuple(row[i] for i in positions) for row in rows), key=repr)
            assert _contents(con, name, kept) == kept_rows, name
            # what later versions add is appended, with no value on the rows before unless filled
            assert [c[0] for c in columns(con, name)] == kept + _added_since_1(name), name
            for added in _added_since_1(name):
                if (name, added) not in _FILLED:
                    assert con.execute(f"SELECT count({added}) FROM {name}").fetchall() == [(0,)], (name, added)
        # the modules lists, dropped, live on as the bit sets made from them
        assert _contents(con, f"({bit_set_values('module', 'module_bits')})") == modules_before
        for table in tables.TABLE_LIST:
            stored = [c for c in columns(con, table.name) if table.name != "account_metrics" or c[0] != "logins"]
            assert stored == registry_columns(table), table.name
        [(comment,)] = con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'usage_events' AND column_name = 'partition_date'"
        ).fetchall()
        assert comment == tables.TABLES["usage_events"].column("partition_date").description
    with connect(path) as con:  # each version is applied once
        assert [v for v, _ in versions(con)] == list(range(1, migrations.LATEST + 1))
    with connect(path, read_only=True) as con:
        kept = [column for column, _type, _nullable in shape["account_metrics"]]
        assert _contents(con, "account_metrics", kept) == before["account_metrics"]


def test_a_read_only_open_of_an_outdated_warehouse_says_to_open_it_read_write_once(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(MAIN_SCHEMA)
    with pytest.raises(WarehouseOutdated) as refused:
        connect(path, read_only=True)
    assert str(refused.value) == (
        f"the warehouse {path} has no schema version (made before versions); this code needs version "
        f"{migrations.LATEST}. Open it read-write once to upgrade it (any cs-pipeline materialize or backfill "
        "does, or cs_pipeline.warehouse.connect(path))."
    )
    with duckdb.connect(str(path), read_only=True) as con:  # untouched
        assert "schema_version" not in {name for (name,) in con.execute("SHOW TABLES").fetchall()}
    connect(path).close()
    connect(path, read_only=True).close()


def test_a_warehouse_with_only_some_of_the_tables_of_version_1_is_refused(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(MAIN_SCHEMA)
        con.execute("DROP TABLE usage_user_days")
    with pytest.raises(SchemaVersionError, match="lacks the tables usage_user_days of version 1"):
        connect(path)
    with duckdb.connect(str(path), read_only=True) as con:  # the transaction was rolled back
        assert "schema_version" not in {name for (name,) in con.execute("SHOW TABLES").fetchall()}


def test_a_version_2_warehouse_gets_the_new_metric_as_version_3_and_the_health_lab_tables_as_version_4(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:  # what the code of version 2 made
        con.execute(tables.create_statements(version=2))
        con.execute(tables.comment_statements(version=2))
        con.execute("INSERT INTO schema_version VALUES (2, now(), 'new warehouse, created at version 2')")
        con.execute(
            "INSERT INTO account_health VALUES ('2025-11-20', 'XYZ', 'default', 'Good', NULL, MAP {}, [], NULL, 'r')"
        )
    lab_tables = ["health_backtest", "health_backtest_churns", "health_backtest_rules"]
    with connect(path) as con:
        assert versions(con)[1:3] == [
            (3, "add account_metrics.days_since_active_30d"),
            (4, "create " + "; create ".join(lab_tables)),
        ]
        assert columns(con, "account_metrics")[-1] == ("days_since_active_30d", "INTEGER", True)
        for name in lab_tables:
            assert columns(con, name) == registry_columns(tables.TABLES[name]), name
        [(comment,)] = con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'health_backtest' AND column_name = 'lift'"
        ).fetchall()
        assert comment == tables.TABLES["health_backtest"].column("lift").description
        assert con.execute("SELECT account_id FROM account_health").fetchall() == [("XYZ",)]


# --- (b) a warehouse of a newer version is refused ----------------------------------------------


def test_a_warehouse_newer_than_the_code_is_refused_naming_the_file_and_both_versions(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    connect(path).close()
    newer = migrations.LATEST + 1
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schema_version VALUES (?, now(), 'from the future')", [newer])
    expected = (
        f"the warehouse {path} is at schema version {newer}, newer than this code's version {migrations.LATEST}: "
        "it was written by a newer cs_pipeline. Run that version (or a newer one) against it."
    )
    for read_only in (False, True):
        with pytest.raises(WarehouseTooNew) as refused:
            connect(path, read_only=read_only)
        assert str(refused.value) == expected
    with pytest.raises(dg.Failure) as failure:  # a step fails with the message, no stack trace
        with WarehouseResource(path=str(path)).connection():
            pass
    assert failure.value.description == expected
    with duckdb.connect(str(path), read_only=True) as con:
        assert [v for v, _ in versions(con)] == [migrations.LATEST, newer]


# --- adding a built-in metric: one registry entry (since = the next version) --------------------


def test_a_metric_added_to_the_registry_reaches_existing_warehouses_as_the_next_version(tmp_path, monkeypatch):
    old = tmp_path / "old.duckdb"
    with connect(old) as con:
        con.execute('ALTER TABLE account_metrics ADD COLUMN "logins" DOUBLE')  # a custom metric
        con.execute(
            "INSERT INTO account_metrics (date, account_id, account_type, status_group, active_users_1d, "
            "active_users_7d, active_users_14d, active_users_30d, events_14d, events_30d, active_days_14d, "
            "active_days_30d, modules_used_30d, actions_used_30d, usage_frequency, run_id, logins) "
            "VALUES ('2025-11-20', 'A', 'account', 'Free', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'Inactive', 'r', 1)"
        )
    nxt = migrations.LATEST + 1
    metric = Metric("sessions_30d", "BIGINT", "number", "sessions in the last 30 days", window=30, nullable=True)
    metrics_table = tables.TABLES["account_metrics"]
    column = tables.Column(metric.name, metric.type, metric.nullable, metric.description, since=nxt)
    extended = replace(metrics_table, columns=(*metrics_table.columns, column))
    registry = tuple(extended if t.name == "account_metrics" else t for t in tables.TABLE_LIST)
    monkeypatch.setattr(tables, "TABLE_LIST", registry)
    monkeypatch.setattr(tables, "TABLES", {t.name: t for t in registry})
    plan = migrations.migrations()
    monkeypatch.setattr(migrations, "MIGRATIONS", plan)
    monkeypatch.setattr(migrations, "LATEST", nxt)
    assert plan[-1].version == nxt and plan[-1].description == "add account_metrics.sessions_30d"

    with connect(old) as con:
        assert versions(con)[-1] == (nxt, "add account_metrics.sessions_30d")
        names = [name for name, _type, _nullable in columns(con, "account_metrics")]
        assert names[-2:] == ["logins", "sessions_30d"]  # appended, after what the warehouse had
        assert con.execute("SELECT logins, sessions_30d FROM account_metrics").fetchall() == [(1.0, None)]
    with connect(tmp_path / "new.duckdb") as con:  # a new warehouse has the same order
        assert columns(con, "account_metrics") == registry_columns(extended)
        assert columns(con, "account_metrics")[-1] == ("sessions_30d", "BIGINT", True)


def test_a_column_added_by_a_migration_must_be_nullable():
    with pytest.raises(ValueError, match="must be nullable"):
        tables.Table("t", "a table", (tables.Column("a", "VARCHAR"), tables.Column("b", "BIGINT", False, since=2)))
