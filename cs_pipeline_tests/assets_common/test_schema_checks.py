"""The schema checks generated from the table registry (assets_common/schema_checks.py), on a real
warehouse: each reads the rows of the partition its step wrote (the registry's partition
columns), fails naming the table, and passes counting every row it checked."""

from __future__ import annotations

import logging
from datetime import date

import dagster as dg
import pandera.polars as pa
import polars as pl
import pytest

from cs_pipeline import schemas
from cs_pipeline.assets_common.range_step import Day
from cs_pipeline.assets_common.schema_checks import schema_check, stored_rows_verdict
from cs_pipeline.usage.checks import USAGE_EVENTS_BUT_UNIQUENESS
from cs_pipeline.warehouse import WarehouseResource

D, D_NEXT = date(2025, 11, 3), date(2025, 11, 4)
HEALTH_ROW = "INSERT INTO account_health VALUES (?, ?, ?, 'Good', ?, MAP {}, ['fine'], NULL, 'run')"


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    """A new warehouse with account_health rows: D's `default` partition valid (2 rows), D's
    `strict` partition and D_NEXT's `default` partition each with a score of 150."""
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))
    with warehouse.connection() as con:
        con.executemany(
            HEALTH_ROW,
            [
                [D, "A", "default", 80],
                [D, "B", "default", 100],
                [D, "A", "strict", 150],
                [D_NEXT, "A", "default", 150],
            ],
        )
    return warehouse


def day(warehouse: WarehouseResource, on: date, profile: str | None = None) -> Day:
    return Day(on, "run", None, warehouse, None, logging.getLogger(__name__), profile)


def metadata(result: dg.AssetCheckResult) -> dict:
    return {name: value.value for name, value in result.metadata.items()}


def test_the_check_of_a_partition_reads_only_that_partitions_rows(warehouse):
    check = schema_check("account_health", schemas.account_health, description="d")
    assert (check.spec.name, check.spec.blocking) == ("account_health_schema", True)

    result = check.evaluate(day(warehouse, D, "default"))
    assert result.passed and metadata(result) == {"rows_checked": 2}

    for failing in (day(warehouse, D, "strict"), day(warehouse, D_NEXT, "default")):
        result = check.evaluate(failing)
        found = metadata(result)
        assert not result.passed
        assert (found["table"], found["rows_checked"], found["failures"]) == ("account_health", 1, 1)
        assert "| health_score | in_range(0, 100) | 1 | 150 |" in found["failing_checks"]


def test_a_check_of_a_date_and_profile_partition_refuses_a_date_alone(warehouse):
    check = schema_check("account_health", schemas.account_health, description="d")
    with pytest.raises(ValueError, match="given the date 2025-11-03 alone"):
        check.evaluate(day(warehouse, D))


def test_a_check_of_several_unpartitioned_tables_reads_every_row_and_names_the_failing_table(warehouse):
    check = schema_check("accounts", schemas.accounts, schemas.hierarchy_issues, description="d")
    with warehouse.connection() as con:
        con.execute("INSERT INTO hierarchy_issues VALUES ('A', 'cycle', 'A -> A', 'run')")
    assert metadata(check.evaluate(day(warehouse, D))) == {"rows_checked": 1}  # no account, one issue

    with warehouse.connection() as con:
        con.execute("INSERT INTO hierarchy_issues VALUES ('B', 'made_up', 'x', 'run')")
    result = check.evaluate(day(warehouse, D_NEXT))
    found = metadata(result)
    assert not result.passed
    assert (found["table"], found["rows_checked"]) == ("hierarchy_issues", 2)
    assert "| issue | isin(" in found["failing_checks"] and "| made_up |" in found["failing_checks"]


def test_a_column_with_only_a_type_and_nullability_is_judged_in_duckdb_and_a_failure_still_names_its_rows(warehouse):
    # hierarchy_issues.detail has no value check: its nulls are counted in DuckDB, not read into
    # Polars; a null there still fails through pandera, with its failure case
    check = schema_check("accounts", schemas.hierarchy_issues, description="d")
    with warehouse.connection() as con:
        con.execute(
            "INSERT INTO hierarchy_issues VALUES ('A', 'cycle', 'A -> A', 'run'), ('B', 'cycle', 'B -> B', 'run')"
        )
    assert metadata(check.evaluate(day(warehouse, D))) == {"rows_checked": 2}

    with warehouse.connection() as con:
        con.execute("INSERT INTO hierarchy_issues VALUES ('C', 'cycle', NULL, 'run')")
    found = metadata(result := check.evaluate(day(warehouse, D)))
    assert not result.passed
    assert (found["table"], found["rows_checked"], found["failures"]) == ("hierarchy_issues", 3, 1)
    assert "| detail | not_nullable | 1 | None |" in found["failing_checks"]


def test_a_column_of_another_type_than_its_schemas_fails_through_pandera(warehouse):
    # account_health.health_score is stored as INTEGER (Polars Int32): a schema typing it Float64
    # without a value check fails on the type alone, as pandera reports it
    as_float = schemas.account_health.update_column("health_score", dtype=pl.Float64, checks=[])
    result = schema_check("account_health", as_float, description="d").evaluate(day(warehouse, D, "default"))
    found = metadata(result)
    assert not result.passed and (found["table"], found["rows_checked"]) == ("account_health", 2)
    assert "| health_score | dtype('Float64') | 1 | Int32 |" in found["failing_checks"]


EVENT_ROW = (
    "INSERT INTO usage_events VALUES (?, ?::TIMESTAMPTZ, ?, 'A', 'u@a', 'reports', 'open', ?, 'day.csv', ?, 'run')"
)


def test_a_days_events_pass_reading_only_their_checked_columns_and_a_failing_row_gets_panderas_case(warehouse):
    # usage_events: event_id, account_id, user_id, module, action, source_file have nothing to
    # check but nulls (counted in DuckDB); ts, the dates and source_row are read for the row checks
    with warehouse.connection() as con:
        con.executemany(
            EVENT_ROW,
            [["e1", "2025-11-03 10:00:00+00", D, D, 1], ["e2", "2025-11-02 23:59:00+00", date(2025, 11, 2), D, 2]],
        )
    result = stored_rows_verdict(day(warehouse, D), [USAGE_EVENTS_BUT_UNIQUENESS])
    assert result.passed and metadata(result) == {"rows_checked": 2}

    with warehouse.connection() as con:  # a day after the partition's next day: in the future
        con.execute(EVENT_ROW, ["e3", "2025-11-05 08:00:00+00", date(2025, 11, 5), D, 3])
    found = metadata(result := stored_rows_verdict(day(warehouse, D), [USAGE_EVENTS_BUT_UNIQUENESS]))
    assert not result.passed
    assert (found["table"], found["rows_checked"], found["failures"]) == ("usage_events", 3, 1)
    # pandera's failure case: the whole row, its every column included
    assert '| usage_events | not_in_future | 1 | {"event_id":"e3",' in found["failing_checks"]
    assert '"source_file":"day.csv","source_row":3} |' in found["failing_checks"]


def test_a_row_check_selecting_columns_without_naming_them_is_judged_on_every_column(warehouse):
    # pl.all() names no column: judged on the checked columns alone it would miss the null
    # account_id (a column with nothing else to check); every column is read instead
    holds = pl.all_horizontal(pl.all().is_not_null())
    no_nulls = pa.Check(lambda data: data.lazyframe.select(holds), name="no_nulls", statistics={"holds": holds})
    schema = pa.DataFrameSchema(schemas.hierarchy_issues.columns, checks=[no_nulls], name="hierarchy_issues")
    with warehouse.connection() as con:
        con.execute("INSERT INTO hierarchy_issues VALUES (NULL, 'cycle', 'a cycle without an ID', 'run')")
    found = metadata(result := schema_check("accounts", schema, description="d").evaluate(day(warehouse, D)))
    assert not result.passed and (found["table"], found["rows_checked"]) == ("hierarchy_issues", 1)
    assert "| hierarchy_issues | no_nulls | 1 |" in found["failing_checks"]
