"""The SQL health evaluator (`health/health_sql.py`) against the reference evaluator (`health/rules.py`).

Hand-written cases pin each construct with expected values; the randomized test then builds random
configs and rows and checks that DuckDB and `rules.health_of` agree on every row. Configs are always
built through `parse_config`, so rules are validated exactly like real ones.
"""

import math
import random
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import cs_pipeline
from cs_pipeline.config import TEXT_VALUES, USAGE_FREQUENCIES, PipelineConfig, Profile, Rule, load_config, parse_config
from cs_pipeline.health.health_sql import assignment_expression, health_query, rule_expression
from cs_pipeline.health.rules import Health, exact_weight, health_of, metric_score, rule_holds, weighted_mean

SOURCE = "account_inputs"
ATTRIBUTE_FIELDS = {"csm_risk": "CSM_Risk__c", "segment": "Segment__c"}
ATTRIBUTES = tuple(ATTRIBUTE_FIELDS)
# The columns of the source relation, typed as the pipeline's account_metrics / accounts columns.
COLUMNS: dict[str, pa.DataType] = {
    "account_id": pa.string(),
    "status": pa.string(),
    "status_group": pa.string(),
    "account_type": pa.string(),
    "account_age_days": pa.int32(),
    "active_users_7d": pa.int64(),
    "events_30d": pa.int64(),
    "engagement_score": pa.int32(),
    "license_utilization": pa.float64(),
    "usage_frequency": pa.string(),
    "escalations": pa.float64(),  # a custom metric: DOUBLE
    "attributes": pa.map_(pa.string(), pa.string()),
}
BASE_CONFIG: dict[str, Any] = {
    "crm": {"files_dir": "crm", "mapping": {"account": {"attributes": ATTRIBUTE_FIELDS}}},
    "landing": "landing",
    "warehouse": "wh.duckdb",
    "metrics": {"escalations": {"count_action": "Escalate"}},
}

Row = dict[str, Any]


def make_config(profiles: list[dict[str, Any]]) -> PipelineConfig:
    return parse_config({**BASE_CONFIG, "profiles": profiles}, Path(__file__).with_name("cs.yaml"))


def demo_profiles() -> list[Profile]:
    return load_config(Path(cs_pipeline.__file__).resolve().parents[1] / "demo" / "cs_pipeline.yaml").profiles


def account(account_id: str, status_group: str = "Paying", **values: Any) -> Row:
    """A source row: the given metrics, the rest NULL; `attributes` is a dict (or None)."""
    return {"account_id": account_id, "status_group": status_group, "attributes": {}, **values}


def load(connection: duckdb.DuckDBPyConnection, rows: Sequence[Row]) -> None:
    """Replace the source table with `rows`, typed as COLUMNS."""

    def cell(row: Row, name: str) -> object:
        value = row.get(name)
        return list(value.items()) if isinstance(value, dict) else value  # a map is a list of pairs in arrow

    arrays = {name: pa.array([cell(row, name) for row in rows], type) for name, type in COLUMNS.items()}
    connection.register("staging", pa.table(arrays))
    connection.execute(f"CREATE OR REPLACE TABLE {SOURCE} AS SELECT * FROM staging")
    connection.unregister("staging")


def values_of(connection: duckdb.DuckDBPyConnection) -> dict[str, dict[str, object]]:
    """Each source row as `rules` sees it: columns by name, attributes flattened, missing -> None."""
    relation = connection.sql(f"SELECT * FROM {SOURCE}")
    out = {}
    for record in relation.fetchall():
        row = dict(zip(relation.columns, record, strict=True))
        attributes = row.pop("attributes") or {}
        out[row["account_id"]] = {**row, **{name: attributes.get(name) for name in ATTRIBUTES}}
    return out


def sql_health(connection: duckdb.DuckDBPyConnection, profiles: Sequence[Profile]) -> dict[str, Health]:
    """Every profile's query over the loaded rows, as Health by account_id."""
    out: dict[str, Health] = {}
    for profile in profiles:
        query = health_query(profile, profiles, ATTRIBUTES, SOURCE)
        for account_id, health, score, dimension_scores, reasons in connection.execute(query).fetchall():
            assert account_id not in out, f"{account_id} scored by two profiles"
            out[account_id] = Health(profile.name, health, score, dimension_scores, reasons)
    return out


def python_health(rows: Mapping[str, Mapping[str, object]], profiles: Sequence[Profile]) -> dict[str, Health]:
    """`rules.health_of` by account_id, for the accounts that take part in health and match a profile."""
    out = {}
    for account_id, values in rows.items():
        health = health_of(profiles, values)
        if values["status_group"] in ("Free", "Paying") and health is not None:
            out[account_id] = health
    return out


def scored(profiles: Sequence[Profile], rows: Sequence[Row]) -> dict[str, Health]:
    with duckdb.connect() as connection:
        load(connection, rows)
        return sql_health(connection, profiles)


@pytest.fixture(scope="module")
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as con:
        yield con


# --- single rules -------------------------------------------------------------------------------


def one_rule(metric: str, op: str, value: object = None) -> Rule:
    spec: dict[str, object] = {"metric": metric, "op": op}
    if value is not None:
        spec["value"] = value
    return make_config([{"name": "p", "good": [spec]}]).profiles[0].good[0]


BIG = 2**53 + 1  # an int no double equals; DuckDB would round it to 2**53


@pytest.mark.parametrize(
    ("metric", "op", "target", "value", "expected"),
    [
        ("engagement_score", ">=", 60, 60, True),
        ("engagement_score", ">=", 60, 59, False),
        ("engagement_score", ">", 60, 60, False),
        ("engagement_score", "<=", 10, 10, True),
        ("engagement_score", "<", 10, 10, False),
        ("engagement_score", "==", 3, 3, True),
        ("engagement_score", "!=", 3, 3, False),
        ("engagement_score", "in", [1, 2], 2, True),
        ("engagement_score", "not_in", [1, 2], 2, False),
        ("engagement_score", "<", 10.5, 10, True),  # an int column against a float value
        ("engagement_score", "==", 10.5, 10, False),
        ("engagement_score", ">=", 60, None, None),
        ("engagement_score", "!=", 3, None, None),
        ("engagement_score", "not_in", [1], None, None),
        ("engagement_score", "is_empty", None, None, True),
        ("engagement_score", "is_not_empty", None, None, False),
        ("engagement_score", "is_empty", None, 0, False),
        ("engagement_score", "is_not_empty", None, 0, True),
        ("license_utilization", ">=", 0.1, 0.1, True),  # the target is the double 0.1, as the value
        ("license_utilization", "<", 0.1, 0.09999999999999999, True),
        ("license_utilization", "==", 0.30000000000000004, 0.1 + 0.2, True),
        ("license_utilization", "==", 0.3, 0.1 + 0.2, False),
        ("license_utilization", ">=", 50, 49.99999999999999, False),
        ("license_utilization", "in", [50, 20.5], 20.5, True),
        ("escalations", "==", 3, 3.0, True),
        ("escalations", ">", -2.5, -2.0, True),
        ("escalations", ">=", BIG, float(2**53), False),  # exact, as Python: 2**53 < 2**53 + 1
        ("escalations", ">", BIG, float(2**53 + 2), True),
        ("escalations", "<=", BIG, float(2**53), True),
        ("escalations", "<", BIG, float(2**53 + 2), False),
        ("escalations", "==", BIG, float(2**53), False),
        ("escalations", "!=", BIG, float(2**53), True),
        ("escalations", "in", [BIG, 7], float(2**53), False),
        ("escalations", "==", BIG, None, None),
        ("escalations", "<", int(1e300) + 1, 1e300, True),  # between two doubles, far from 2**53
        ("escalations", ">=", int(1e300) + 1, 1e300, False),
        ("events_30d", ">=", BIG, 2**53, False),
        ("events_30d", "==", 2**53, 2**53, True),
        ("usage_frequency", ">=", "Weekly", "Daily", True),
        ("usage_frequency", ">=", "Monthly", "Daily", True),  # by rank, not alphabetically
        ("usage_frequency", "<", "Weekly", "Monthly", True),
        ("usage_frequency", "<", "Inactive", "Inactive", False),
        ("usage_frequency", ">", "Weekly", "Weekly", False),
        ("usage_frequency", "<=", "Monthly", "Weekly", False),
        ("usage_frequency", "==", "Inactive", "Inactive", True),
        ("usage_frequency", "in", ["Monthly", "Weekly"], "Daily", False),
        ("usage_frequency", ">=", "Weekly", None, None),
        ("usage_frequency", "is_empty", None, None, True),
        ("csm_risk", "==", "0 - NO RISK", "0 - no risk", False),  # exact: case matters
        ("csm_risk", "in", ["3 - HIGH", "4 - CRITICAL"], "4 - CRITICAL", True),
        ("csm_risk", "not_in", ["3 - HIGH"], "1 - MINOR", True),
        ("csm_risk", "==", "it's", "it's", True),  # a quote in the config value
        ("csm_risk", "!=", "it's", "its", True),
        ("csm_risk", "==", "3 - HIGH", None, None),  # the key is missing from the map
        ("csm_risk", "is_empty", None, None, True),
        ("csm_risk", "is_not_empty", None, "x", True),
        ("status_group", "in", ["Free"], "Paying", False),
        ("account_type", "==", "product", "product", True),
    ],
)
def test_rule_expression(
    connection: duckdb.DuckDBPyConnection, metric: str, op: str, target: object, value: object, expected: bool | None
) -> None:
    rule = one_rule(metric, op, target)
    row = account("a", attributes={metric: value} if metric in ATTRIBUTES and value is not None else {})
    if metric not in ATTRIBUTES:
        row[metric] = value
    load(connection, [row])
    (values,) = values_of(connection).values()
    assert rule_holds(rule, values) is expected  # the case itself is right
    assert connection.execute(f"SELECT {rule_expression(rule, ATTRIBUTES)} FROM {SOURCE}").fetchall() == [(expected,)]


def test_attribute_map_access(connection: duckdb.DuckDBPyConnection) -> None:
    # DuckDB 2.0: map['key'] is the value itself (not a one-element list) and NULL for a missing key.
    rule = one_rule("segment", "==", "Enterprise")
    rows = [
        account("present", attributes={"segment": "Enterprise"}),
        account("other_key", attributes={"csm_risk": "3 - HIGH"}),
        account("empty_map", attributes={}),
        account("null_map", attributes=None),
    ]
    load(connection, rows)
    query = f"SELECT account_id, {rule_expression(rule, ATTRIBUTES)}, \"attributes\"['segment'] FROM {SOURCE}"
    assert sorted(connection.execute(query).fetchall()) == [
        ("empty_map", None, None),
        ("null_map", None, None),
        ("other_key", None, None),
        ("present", True, "Enterprise"),
    ]


# --- DuckDB number formatting -------------------------------------------------------------------


def test_duckdb_prints_doubles_as_python_repr(connection: duckdb.DuckDBPyConnection) -> None:
    # Reasons show a DOUBLE with CAST(x AS VARCHAR): it must be repr(float), including the forms
    # where other printers differ (exponents, -0.0, 17 significant digits, subnormals).
    pinned = {
        50.0: "50.0",
        100 / 3: "33.333333333333336",
        0.1 + 0.2: "0.30000000000000004",
        1e-05: "1e-05",
        0.0001: "0.0001",
        1e15: "1000000000000000.0",
        1e16: "1e+16",
        -0.0: "-0.0",
        5e-324: "5e-324",
        1.7976931348623157e308: "1.7976931348623157e+308",
    }
    rng = random.Random(7)
    from_bits = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(5000)]
    decimals = [rng.randint(-(10**6), 10**6) / rng.choice([1, 3, 7, 10, 1000]) for _ in range(5000)]
    doubles = [x for x in [*pinned, *from_bits, *decimals] if math.isfinite(x)]
    connection.register("doubles", pa.table({"x": pa.array(doubles, pa.float64())}))
    printed = [text for (text,) in connection.execute("SELECT CAST(x AS VARCHAR) FROM doubles").fetchall()]
    connection.unregister("doubles")
    assert printed[: len(pinned)] == list(pinned.values())
    assert printed == [repr(x) for x in doubles]


# --- assignment -----------------------------------------------------------------------------------


def test_assignment_first_match_with_demo_profiles(connection: duckdb.DuckDBPyConnection) -> None:
    profiles = demo_profiles()
    rows = [
        account("young_enterprise", account_age_days=10, attributes={"segment": "Enterprise"}),
        account("enterprise", account_age_days=30, attributes={"segment": "Enterprise"}),
        account("before_create", "Free", account_age_days=-5),
        account("unknown_age_paying", account_age_days=None),
        account("free", "Free", account_age_days=400, attributes={"segment": "SMB"}),
    ]
    load(connection, rows)
    query = f"SELECT account_id, {assignment_expression(profiles, ATTRIBUTES)} FROM {SOURCE}"
    assert dict(connection.execute(query).fetchall()) == {
        "young_enterprise": "onboarding",
        "enterprise": "high_touch",
        "before_create": "onboarding",
        "unknown_age_paying": "digital",  # a rule on a missing value does not hold in `when`
        "free": "default",
    }
    without_default = profiles[:3]
    query = f"SELECT {assignment_expression(without_default, ATTRIBUTES)} FROM {SOURCE} WHERE account_id = 'free'"
    assert connection.execute(query).fetchall() == [(None,)]


def test_unmatched_and_non_scored_accounts_are_absent() -> None:
    onboarding, high_touch, digital, _ = demo_profiles()
    rows = [
        account("paying", usage_frequency="Daily"),
        account("free_unmatched", "Free", usage_frequency="Daily"),  # only the missing default would take it
        account("canceled", "Canceled", account_age_days=1),
        account("unknown", "Unknown", account_age_days=1),
        account("free_young", "Free", account_age_days=1, active_users_7d=2),
    ]
    result = scored([onboarding, high_touch, digital], rows)
    assert sorted(result) == ["free_young", "paying"]
    assert result["free_young"] == Health("onboarding", "Good", reasons=["active_users_7d >= 1 (value 2)"])


def test_health_query_rejects_a_foreign_profile() -> None:
    onboarding, high_touch, *_ = demo_profiles()
    with pytest.raises(ValueError, match="not among the profiles"):
        health_query(onboarding, [high_touch], ATTRIBUTES, SOURCE)


# --- scorecards ---------------------------------------------------------------------------------


def test_demo_high_touch_scorecard() -> None:
    profiles = demo_profiles()
    enterprise = {"account_age_days": 400, "attributes": {"segment": "Enterprise"}}
    good = {"usage_frequency": "Daily", "engagement_score": 60, "license_utilization": 75.5}
    rows = [
        account("good", **enterprise, **good),
        account(
            "poor_over_good", **good, account_age_days=400, attributes={"segment": "Enterprise", "csm_risk": "3 - HIGH"}
        ),
        account("average", **enterprise, **{**good, "engagement_score": 59, "license_utilization": 40.0}),
        account("no_value", **enterprise),
        account("only_risk", attributes={"segment": "Enterprise", "csm_risk": "O'Neil"}, account_age_days=99),
    ]
    result = scored(profiles, rows)
    assert result["good"] == Health(
        "high_touch",
        "Good",
        reasons=[
            "usage_frequency >= 'Weekly' (value 'Daily')",
            "engagement_score >= 60 (value 60)",
            "license_utilization >= 50 (value 75.5)",
        ],
    )
    assert result["poor_over_good"] == Health(
        "high_touch", "Poor", reasons=["csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '3 - HIGH')"]
    )
    # Average: poor rules evaluated that do not hold, then good rules evaluated that do not hold.
    assert result["average"] == Health(
        "high_touch",
        "Average",
        reasons=[
            "engagement_score < 10 (value 59)",
            "engagement_score >= 60 (value 59)",
            "license_utilization >= 50 (value 40.0)",
        ],
    )
    assert result["no_value"] == Health("high_touch", "No value")
    assert result["only_risk"] == Health(
        "high_touch",
        "Average",
        reasons=[
            "csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value 'O''Neil')",
            "csm_risk in ['0 - NO RISK'] (value 'O''Neil')",
        ],
    )


def test_scorecard_edge_cases() -> None:
    config = make_config(
        [
            {
                "name": "it's",  # a quote in a profile name
                "when": [{"metric": "account_type", "op": "==", "value": "product"}],
                "good": [{"metric": "csm_risk", "op": "is_empty"}],
            },
            {
                "name": "sparse",
                "when": [{"metric": "status_group", "op": "==", "value": "Free"}],
                "good": [{"metric": "usage_frequency", "op": ">=", "value": "Weekly"}],
                "poor": [{"metric": "escalations", "op": ">", "value": 2}],
            },
            {"name": "poor_only", "poor": [{"metric": "escalations", "op": ">", "value": 2}]},
        ]
    )
    rows = [
        account("empty_risk", account_type="product"),
        account("risk", account_type="product", attributes={"csm_risk": "x"}),
        account("no_good_evaluated", "Free", escalations=1.0),  # not Good: no good rule could be evaluated
        account("escalated", escalations=3.0),
        account("calm", escalations=0.5),
        account("unknown", escalations=None),
    ]
    result = scored(config.profiles, rows)
    assert result == {
        "empty_risk": Health("it's", "Good", reasons=["csm_risk is_empty (value None)"]),
        "risk": Health("it's", "Average", reasons=["csm_risk is_empty (value 'x')"]),
        "no_good_evaluated": Health("sparse", "Average", reasons=["escalations > 2 (value 1.0)"]),
        "escalated": Health("poor_only", "Poor", reasons=["escalations > 2 (value 3.0)"]),
        "calm": Health("poor_only", "Average", reasons=["escalations > 2 (value 0.5)"]),
        "unknown": Health("poor_only", "No value"),
    }


def test_result_types(connection: duckdb.DuckDBPyConnection) -> None:
    load(connection, [account("a")])
    for profile in demo_profiles()[1:3]:  # a scorecard and a dimension profile
        relation = connection.sql(health_query(profile, demo_profiles(), ATTRIBUTES, SOURCE))
        assert relation.columns == ["account_id", "health", "health_score", "dimension_scores", "reasons"]
        assert [str(t) for t in relation.types] == [
            "VARCHAR",
            "VARCHAR",
            "INTEGER",
            "MAP(VARCHAR, INTEGER)",
            "VARCHAR[]",
        ]


# --- dimensions ---------------------------------------------------------------------------------


def metric(name: str, weight: float, good: tuple[str, object], poor: tuple[str, object]) -> dict[str, Any]:
    return {
        "metric": name,
        "weight": weight,
        "good": {"op": good[0], "value": good[1]},
        "poor": {"op": poor[0], "value": poor[1]},
    }


def engagement(weight: float) -> dict[str, Any]:
    return metric("engagement_score", weight, (">=", 60), ("<", 10))


def frequency(weight: float) -> dict[str, Any]:
    return metric("usage_frequency", weight, (">=", "Weekly"), ("==", "Inactive"))


def utilization(weight: float) -> dict[str, Any]:
    return metric("license_utilization", weight, (">=", 50), ("<", 20))


def dimensions_profile(*dimensions: tuple[str, float, list[dict[str, Any]]], **bands: int) -> Profile:
    spec: dict[str, Any] = {
        "name": "p",
        "dimensions": [{"name": name, "weight": weight, "metrics": metrics} for name, weight, metrics in dimensions],
    }
    if bands:
        spec["bands"] = bands
    return make_config([spec]).profiles[0]


def test_demo_digital_profile() -> None:
    profiles = demo_profiles()
    rows = [
        account("left_out", usage_frequency="Monthly", engagement_score=72, account_age_days=99),
        account("all", usage_frequency="Weekly", engagement_score=72, license_utilization=30.0, account_age_days=99),
        account("low", usage_frequency="Daily", engagement_score=4, license_utilization=10.0, account_age_days=99),
        account("nothing", account_age_days=99),
    ]
    result = scored(profiles, rows)
    assert result["left_out"] == Health(
        "digital",
        "Good",
        80,
        {"usage": 80},
        ["usage/engagement_score: Good (>= 60, value 72)", "usage/usage_frequency: Average (value 'Monthly')"],
    )
    assert result["all"] == Health(
        "digital",
        "Good",
        87,  # (2*100 + 60) / 3 = 86.67
        {"usage": 100, "adoption": 60},
        [
            "usage/engagement_score: Good (>= 60, value 72)",
            "usage/usage_frequency: Good (>= 'Weekly', value 'Weekly')",
            "adoption/license_utilization: Average (value 30.0)",
        ],
    )
    assert list(result["all"].dimension_scores) == ["usage", "adoption"]  # config order
    assert result["low"] == Health(
        "digital",
        "Poor",
        33,
        {"usage": 50, "adoption": 0},
        [
            "usage/engagement_score: Poor (< 10, value 4)",
            "usage/usage_frequency: Good (>= 'Weekly', value 'Daily')",
            "adoption/license_utilization: Poor (< 20, value 10.0)",
        ],
    )
    assert result["nothing"] == Health("digital", "No value")


def test_left_out_metric_renormalises_weights() -> None:
    profile = dimensions_profile(("d", 1, [engagement(3), frequency(1), utilization(4)]))
    rows = [
        account("full", engagement_score=72, usage_frequency="Monthly", license_utilization=0.0),  # 360/8 = 45
        account("part", engagement_score=72, usage_frequency="Monthly"),  # 360/4 = 90
    ]
    result = scored([profile], rows)
    assert {key: (h.dimension_scores, h.health_score, h.health) for key, h in result.items()} == {
        "full": ({"d": 45}, 45, "Poor"),
        "part": ({"d": 90}, 90, "Good"),
    }


def test_half_rounds_up_exactly_in_a_dimension() -> None:
    # (0.6*100 + 1.1*60 + 0.7*0) / 2.4 = 52.5 exactly -> 53; in floats it is 52.49999999999999.
    profile = dimensions_profile(("d", 1, [engagement(0.6), frequency(1.1), utilization(0.7)]))
    row = account("a", engagement_score=72, usage_frequency="Monthly", license_utilization=5.0)
    assert scored([profile], [row])["a"] == Health(
        "p",
        "Average",
        53,
        {"d": 53},
        [
            "d/engagement_score: Good (>= 60, value 72)",
            "d/usage_frequency: Average (value 'Monthly')",
            "d/license_utilization: Poor (< 20, value 5.0)",
        ],
    )


def test_half_rounds_up_at_the_overall_level() -> None:
    # a = 60; b = (3*100 + 5*60) / 8 = 75; overall (60 + 75) / 2 = 67.5 -> 68.
    profile = dimensions_profile(("a", 1, [frequency(1)]), ("b", 1, [engagement(3), utilization(5)]))
    row = account("x", usage_frequency="Monthly", engagement_score=80, license_utilization=35.0)
    result = scored([profile], [row])["x"]
    assert (result.dimension_scores, result.health_score, result.health) == ({"a": 60, "b": 75}, 68, "Average")
    # u = (100 + 7*0) / 8 = 12.5 -> 13; v = 60; overall (13 + 60) / 2 = 36.5 -> 37 (from rounded scores).
    profile = dimensions_profile(("u", 1.5, [engagement(1), utilization(7)]), ("v", 1.5, [frequency(1)]))
    row = account("x", engagement_score=90, license_utilization=1.0, usage_frequency="Monthly")
    result = scored([profile], [row])["x"]
    assert (result.dimension_scores, result.health_score, result.health) == ({"u": 13, "v": 60}, 37, "Poor")


@pytest.mark.parametrize(
    ("good_weight", "poor_weight", "score", "health"),
    [
        (49, 51, 49, "Poor"),
        (1, 1, 50, "Average"),
        (79, 21, 79, "Average"),
        (4, 1, 80, "Good"),
        (0.795, 0.205, 80, "Good"),  # 79.5 rounds up to 80 before banding
        (1, 0.1, 91, "Good"),  # 100 / 1.1 = 90.909...
        (1.5, 0.1, 94, "Good"),  # 150 / 1.6 = 93.75
    ],
)
def test_default_band_edges(good_weight: float, poor_weight: float, score: int, health: str) -> None:
    profile = dimensions_profile(("d", 1, [engagement(good_weight), utilization(poor_weight)]))
    result = scored([profile], [account("a", engagement_score=72, license_utilization=3.0)])["a"]
    assert (result.health_score, result.health) == (score, health)


@pytest.mark.parametrize(
    ("good_weight", "poor_weight", "score", "health"),
    [(29, 71, 29, "Poor"), (3, 7, 30, "Average"), (79, 21, 79, "Average"), (4, 1, 80, "Good")],
)
def test_configured_band_edges(good_weight: float, poor_weight: float, score: int, health: str) -> None:
    profile = dimensions_profile(("d", 1, [engagement(good_weight), utilization(poor_weight)]), average_from=30)
    result = scored([profile], [account("a", engagement_score=72, license_utilization=3.0)])["a"]
    assert (result.health_score, result.health) == (score, health)


def test_dimension_metric_with_emptiness_condition() -> None:
    condition = {"metric": "csm_risk", "good": {"op": "is_empty"}, "poor": {"op": "in", "value": ["3 - HIGH"]}}
    profile = dimensions_profile(("d", 1, [condition]))
    result = scored([profile], [account("none"), account("high", attributes={"csm_risk": "3 - HIGH"})])
    assert result["none"] == Health("p", "Good", 100, {"d": 100}, ["d/csm_risk: Good (is_empty, value None)"])
    assert result["high"] == Health("p", "Poor", 0, {"d": 0}, ["d/csm_risk: Poor (in ['3 - HIGH'], value '3 - HIGH')"])


def test_weights_too_far_apart_for_128_bit_integers() -> None:
    profile = dimensions_profile(("d", 1, [engagement(1e-30), utilization(1e10)]))
    with pytest.raises(ValueError, match="too far apart"):
        health_query(profile, [profile], ATTRIBUTES, SOURCE)


# --- randomized agreement -----------------------------------------------------------------------

INT_TARGETS = [0, 1, 10, 50, 60, 100, -3, 2**53, BIG]
FLOAT_TARGETS = [0.1, 0.5, 49.9, 50.5, 33.333333333333336, 1e-05, 0.30000000000000004, -2.5]
TEXT_TARGETS = {
    "csm_risk": ["0 - NO RISK", "3 - HIGH", "4 - CRITICAL", "it's"],
    "segment": ["Enterprise", "SMB", "O'Neil"],
    "status": ["Trial", "Pro", "Enterprise"],
    **{name: list(values) for name, values in TEXT_VALUES.items()},
}
NUMBER_METRICS = ("engagement_score", "events_30d", "license_utilization", "escalations")
RULE_METRICS = (*NUMBER_METRICS, "usage_frequency", *TEXT_TARGETS)
WEIGHTS = [1, 2, 3, 7, 0.5, 1.5, 0.1, 0.6, 0.7, 1.1, 0.795, 0.205, 1e-05]


def random_target(rng: random.Random, name: str) -> int | float | str:
    if name in NUMBER_METRICS:
        return rng.choice(INT_TARGETS + FLOAT_TARGETS)
    return rng.choice(USAGE_FREQUENCIES if name == "usage_frequency" else TEXT_TARGETS[name])


def random_condition(rng: random.Random, name: str) -> dict[str, Any]:
    ops = ["==", "!=", "in", "not_in", "is_empty", "is_not_empty"]
    if name in NUMBER_METRICS or name == "usage_frequency":
        ops += [">=", ">", "<=", "<"] * 2
    op = rng.choice(ops)
    if op in ("is_empty", "is_not_empty"):
        return {"op": op}
    if op in ("in", "not_in"):
        return {"op": op, "value": [random_target(rng, name) for _ in range(rng.randint(1, 3))]}
    return {"op": op, "value": random_target(rng, name)}


def random_rule(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(RULE_METRICS)
    return {"metric": name, **random_condition(rng, name)}


def random_profile(rng: random.Random, name: str, catch_all: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "when": [] if catch_all else [random_rule(rng) for _ in range(rng.randint(1, 2))],
    }
    if rng.random() < 0.5:
        spec["good"] = [random_rule(rng) for _ in range(rng.randint(0, 3))]
        spec["poor"] = [random_rule(rng) for _ in range(rng.randint(0 if spec["good"] else 1, 3))]
        return spec
    spec["dimensions"] = [
        {
            "name": f"dim {d}'s",
            "weight": rng.choice(WEIGHTS),
            "metrics": [
                {
                    "metric": m,
                    "weight": rng.choice(WEIGHTS),
                    "good": random_condition(rng, m),
                    "poor": random_condition(rng, m),
                }
                for m in rng.sample(RULE_METRICS, rng.randint(1, 4))
            ],
        }
        for d in range(rng.randint(1, 3))
    ]
    average_from, good_from = sorted(rng.choice([0, 30, 50, 60, 80, 100]) for _ in range(2))
    spec["bands"] = {"average_from": average_from, "good_from": good_from}
    return spec


def random_number(rng: random.Random, column: str) -> int | float:
    target = rng.choice(INT_TARGETS + FLOAT_TARGETS + [rng.randint(-5, 105)])
    if column in ("license_utilization", "escalations"):  # DOUBLE: targets, their neighbours, odd magnitudes
        near = float(target)
        return rng.choice([near, math.nextafter(near, -math.inf), math.nextafter(near, math.inf), 1e16, -0.0, 1e300])
    whole = int(target) + rng.choice([-1, 0, 0, 1])
    # Integer columns: BIGINT within +-2**53 (health_sql's premise: counts and days), INTEGER.
    limit = 2**53 if column == "events_30d" else 2**31 - 1
    return max(min(whole, limit), -limit)


def random_row(rng: random.Random, index: int) -> Row:
    missing = rng.choice([0.1, 0.1, 0.5, 0.95])  # some rows are sparse, so that nothing can be scored

    def maybe(value: object) -> object:
        return None if rng.random() < missing else value

    return {
        "account_id": f"a{index}",
        "status_group": rng.choice(["Free", "Paying", "Paying", "Canceled", "Unknown"]),
        "status": maybe(rng.choice(TEXT_TARGETS["status"])),
        "account_type": maybe(rng.choice(TEXT_TARGETS["account_type"])),
        "usage_frequency": maybe(rng.choice(USAGE_FREQUENCIES)),
        "attributes": {name: rng.choice(TEXT_TARGETS[name]) for name in ATTRIBUTES if rng.random() >= missing},
        **{column: maybe(random_number(rng, column)) for column in NUMBER_METRICS},
    }


def has_exact_half(profile: Profile, values: Mapping[str, object], health: Health) -> tuple[bool, bool]:
    """(a dimension mean, the overall mean) is exactly x.5 for this row: the rounding cases."""
    dimension_half = False
    for dimension in profile.dimensions:
        pairs = [
            (exact_weight(m.weight), outcome[0]) for m in dimension.metrics if (outcome := metric_score(m, values))
        ]
        dimension_half |= bool(pairs) and weighted_mean(pairs).denominator == 2
    weights = {d.name: exact_weight(d.weight) for d in profile.dimensions}
    pairs = [(weights[name], score) for name, score in health.dimension_scores.items()]
    return dimension_half, bool(pairs) and weighted_mean(pairs).denominator == 2


def test_random_configs_agree_with_reference(connection: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(20240601)
    seen_outcomes: set[tuple[str, str]] = set()
    unmatched = outside_groups = dimension_halves = overall_halves = 0
    for config_number in range(12):
        count = rng.randint(2, 5)
        profiles = make_config(
            [random_profile(rng, f"p{config_number}_{i}", i == count - 1 and rng.random() < 0.6) for i in range(count)]
        ).profiles
        load(connection, [random_row(rng, i) for i in range(400)])
        values = values_of(connection)
        expected = python_health(values, profiles)
        actual = sql_health(connection, profiles)
        assert actual.keys() == expected.keys()  # unmatched and non-Free/Paying accounts are absent
        for account_id, health in expected.items():
            assert actual[account_id] == health, account_id
            assert list(actual[account_id].dimension_scores) == list(health.dimension_scores)  # config order
        for account_id, row in values.items():
            outside_groups += row["status_group"] not in ("Free", "Paying")
            unmatched += row["status_group"] in ("Free", "Paying") and account_id not in expected
        for account_id, health in expected.items():
            profile = next(p for p in profiles if p.name == health.profile)
            seen_outcomes.add((profile.kind, health.health))
            dimension_half, overall_half = has_exact_half(profile, values[account_id], health)
            dimension_halves += dimension_half
            overall_halves += overall_half
    # The random data reaches every outcome and the rounding edge cases it is meant to test.
    labels = {"Good", "Average", "Poor", "No value"}
    assert seen_outcomes == {(kind, label) for kind in ("scorecard", "dimensions") for label in labels}
    edge_cases = (unmatched, outside_groups, dimension_halves, overall_halves)
    assert all(edge_cases), edge_cases
