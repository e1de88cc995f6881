"""The pandera schemas' one-query verdict (schemas.certainly_valid): on valid rows of every
schema, and on those rows with any cells changed, it passes exactly the frames pandera passes,
so `failures` gives pandera's answer while pandera runs only on frames that fail."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import pandera.polars as pa
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs_pipeline import schemas
from cs_pipeline.usage.checks import USAGE_EVENTS_BUT_UNIQUENESS

D, D1 = date(2025, 11, 3), date(2025, 11, 4)


def _utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)


# two valid rows per schema, column by column (every rule holds: see schemas.py)
VALID: dict[str, dict[str, list]] = {
    "accounts": {
        "account_id": ["A", "B"],
        "name": ["a", None],
        "parent_id": [None, "A"],
        "root_id": ["A", "A"],
        "depth": [0, 1],
        "path": [["A"], ["A", "B"]],
        "account_type": ["account", "product"],
        "product_key": [None, "Widget"],
        "status": ["Pro", None],
        "status_group": ["Paying", "Unknown"],
        "create_date": [D, None],
        "contract_value": [1.5, None],
        "renewal_date": [D1, None],
        "licenses": [10.0, None],
    },
    "hierarchy_issues": {"account_id": ["A", None], "issue": ["cycle", "missing_id"], "detail": ["A -> A", "row 3"]},
    "users": {
        "account_id": ["A", "A"],
        "user_id": ["u1", "u2"],
        "name": ["Ann", None],
        "first_seen": [D, None],
        "last_seen": [D1, None],
    },
    "usage_events": {
        "event_id": ["e1", "e2"],
        "ts": [_utc(D, 10), _utc(D1, 0, 30)],  # the second a day after its delivery: not in the future
        "event_date": [D, D1],
        "account_id": ["A", "B"],
        "user_id": ["u1", None],
        "module": ["Billing", None],
        "action": ["Login", "Send invoice"],
        "partition_date": [D, D],
        "source_file": ["a.csv", "a.csv"],
        "source_row": [1, 2],
    },
    "rejected_events": {
        "partition_date": [D, D],
        "source_file": ["a.csv", "b.parquet"],
        "source_row": [3, None],
        "reason": ["malformed_row", "missing_action"],
        "raw": ["x,y", None],
    },
    "account_metrics": {
        "date": [D, D],
        "account_id": ["A", "B"],
        "snapshot_date": [D, None],
        "account_type": ["account", "unknown"],
        "status": ["Pro", None],
        "status_group": ["Paying", "Canceled"],
        "create_date": [D, None],
        "renewal_date": [D1, None],
        "licenses": [10.0, None],
        "contract_value": [1.5, None],
        "active_users_1d": [1, 0],
        "active_users_7d": [2, 0],
        "active_users_14d": [2, 0],
        "active_users_30d": [3, 0],
        "events_14d": [5, 0],
        "events_30d": [14, 0],
        "active_days_14d": [4, 0],
        "active_days_30d": [14, 0],
        "modules_used_30d": [2, 0],
        "actions_used_30d": [3, 0],
        "usage_frequency": ["Weekly", "Inactive"],
        "engagement_score": [100, None],  # scored for Paying, not for Canceled
        "license_utilization": [30.0, None],
        "account_age_days": [400, None],
        "days_to_renewal": [1, None],
        "days_since_active_30d": [30, None],
    },
    "account_health": {
        "date": [D, D],
        "account_id": ["A", "B"],
        "profile": ["default", "default"],
        "health": ["Good", "No value"],
        "health_score": [0, None],
        "reasons": [["fine"], []],
        "previous_health": [None, "Poor"],
    },
}
SCHEMAS = [
    schemas.accounts,
    schemas.hierarchy_issues,
    schemas.users,
    schemas.usage_events,
    USAGE_EVENTS_BUT_UNIQUENESS,
    schemas.rejected_events,
    schemas.account_metrics,
    schemas.account_health,
]

# what a changed cell may become, by the column's type: nulls, NaN, bounds and one past them,
# values of other columns' vocabularies, and the other row's keys (duplicates)
CHANGES: dict[pl.DataType, list] = {
    pl.String(): [None, "", "A", "B", "u1", "e1", "x", "Good", "No value", "Free", "cycle", "default"],
    pl.Int32(): [None, -1, 0, 1, 2, 13, 14, 15, 30, 31, 100, 101],
    pl.Int64(): [None, -1, 0, 1, 2, 13, 14, 15, 30, 31, 100, 101],
    pl.Float64(): [None, math.nan, -0.5, 0.0, 1.5, math.inf],
    pl.Date(): [None, date(2025, 11, 2), D, D1, date(2025, 11, 5)],
    pl.Datetime("us", "UTC"): [None, _utc(D, 0), _utc(D, 23, 59), _utc(D1, 0), _utc(date(2025, 11, 5), 0, 1)],
    pl.List(pl.String()): [None, [], ["A"], ["B"], ["A", "B"], ["B", "A"], [None]],
}

# the same column read with a type close to its own (another type: a text column)
OTHER_TYPE: dict[pl.DataType, pl.DataType] = {
    pl.Int32(): pl.Int64(),
    pl.Int64(): pl.Int32(),
    pl.Float64(): pl.Float32(),
    pl.Date(): pl.Datetime("us", "UTC"),
    pl.Datetime("us", "UTC"): pl.Datetime("us"),
}


def _read_as_another_type(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    dtype = frame.schema[name]
    if dtype in OTHER_TYPE:
        return frame.with_columns(pl.col(name).cast(OTHER_TYPE[dtype]))
    return frame.with_columns(pl.lit(1 if dtype == pl.String else "x").alias(name))


def _valid_frame(schema: pa.DataFrameSchema) -> pl.DataFrame:
    columns = VALID[schema.name]
    return pl.DataFrame(columns, schema={name: schema.columns[name].dtype.type for name in columns})


def _pandera_passes(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> bool:
    try:
        schema.validate(frame, lazy=True)
    except (pa.errors.SchemaErrors, pl.exceptions.PolarsError):  # pandera fails on a unique key with no column
        return False
    return True


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.name)
def test_valid_rows_pass_without_pandera_and_with_it(schema):
    frame = _valid_frame(schema)
    assert _pandera_passes(schema, frame)
    assert schemas.certainly_valid(schema, frame)
    assert schemas.certainly_valid(schema, frame.clear())  # no rows: nothing fails
    assert schemas.failures(schema, frame) is None


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda schema: schema.name)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_changed_rows_get_pandera_s_verdict(schema, data):
    frame = _valid_frame(schema)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        name = data.draw(st.sampled_from(frame.columns), label="column")
        kind = data.draw(st.sampled_from(["value", "value", "value", "type", "drop"]), label="kind")
        if kind == "drop":
            frame = frame.drop(name)
        elif kind == "type":  # the column read with another type
            frame = _read_as_another_type(frame, name)
        elif frame.schema[name] in CHANGES:
            values = frame[name].to_list()
            values[data.draw(st.integers(0, len(values) - 1), label="row")] = data.draw(
                st.sampled_from(CHANGES[frame.schema[name]]), label="value"
            )
            frame = frame.with_columns(pl.Series(name, values, dtype=frame.schema[name]))
        if not frame.columns:
            break
    assert schemas.certainly_valid(schema, frame) == _pandera_passes(schema, frame)


def test_a_schema_using_what_the_one_query_verdict_does_not_judge_is_left_to_pandera():
    strict = schemas.account_health.update_columns({})
    strict.strict = True
    frame = _valid_frame(schemas.account_health)
    assert not schemas.certainly_valid(strict, frame)
    assert schemas.failures(strict, frame) is None  # pandera passes it
    assert schemas.failures(strict, frame.with_columns(extra=pl.lit(1))) is not None
