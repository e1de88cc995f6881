"""Usage metrics per account and day (docs/metrics.md), computed on a real warehouse.

Events go through the real ingestion (CSV files in a landing zone, `ingest_delivery`), so
the metrics read the daily aggregates exactly as in production. Accounts are stored straight
as account snapshots (support/snapshots.py). Every expected value below is worked out by hand
from the events of the test; D is the day the metrics are for.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from cs_pipeline.config import PipelineConfig, parse_config
from cs_pipeline.metrics.account_metrics import MetricQueryError, compute_account_metrics
from cs_pipeline.usage.ingest import ingest_delivery
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.snapshots import store_account_snapshot
from cs_pipeline_tests.support.tenant import write_events_csv
from cs_pipeline_tests.support.warehouse import bit_set_values

D = date(2025, 11, 20)


def day(offset: int) -> date:
    """D + offset days (offset <= 0 is in the past)."""
    return D + timedelta(days=offset)


@dataclass
class Event:
    account_id: str
    on: date
    user_id: str | None = None
    action: str = "View"
    module: str | None = "Core"


@dataclass
class Warehouse:
    """A warehouse in tmp_path with a landing zone; events are delivered and ingested per day."""

    root: Path
    con: object = None
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.con = connect(self.root / "warehouse.duckdb")

    def accounts(self, snapshot_date: date, *accounts: dict) -> None:
        defaults = {
            "account_type": "account", "status": "Pro", "status_group": "Paying", "create_date": None,
            "renewal_date": None, "licenses": None, "contract_value": None,
        }  # fmt: skip
        store_account_snapshot(self.con, snapshot_date, [{**defaults, **account} for account in accounts])

    def deliver(self, partition: date, events: list[Event], action_limit: int = 500) -> None:
        rows = [
            {
                "event_id": f"e{next(self.ids)}", "ts": f"{e.on.isoformat()}T12:00:00Z", "account_id": e.account_id,
                "user_id": e.user_id or "", "module": e.module or "", "action": e.action,
            }
            for e in events
        ]  # fmt: skip
        write_events_csv(self.root / "landing", partition.isoformat(), f"part-{next(self.ids)}.csv", rows)
        self.ingest(partition, action_limit)

    def ingest(self, partition: date, action_limit: int = 500) -> None:
        """Ingests the delivery of `partition` as it now lies in the landing zone (again)."""
        ingest_delivery(
            self.con, landing=self.root / "landing", partition_date=partition, module_limit=100,
            action_limit=action_limit, run_id="test",
        )  # fmt: skip

    def metrics(self, config: PipelineConfig, as_of: date = D) -> dict[str, dict]:
        compute_account_metrics(self.con, config, as_of=as_of, run_id="test")
        rows = self.con.sql("SELECT * FROM account_metrics WHERE date = ?", params=[as_of]).pl()
        return {row["account_id"]: row for row in rows.iter_rows(named=True)}


def make_config(root: Path, metrics: dict | None = None) -> PipelineConfig:
    data = {
        "crm": {"source": "files", "files_dir": "crm/"},
        "landing": "landing/",
        "warehouse": "warehouse.duckdb",
        "metrics": metrics or {},
        "profiles": [{"name": "default", "good": [{"metric": "usage_frequency", "op": ">=", "value": "Weekly"}]}],
    }
    return parse_config(data, root / "cs_pipeline.yaml")


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    warehouse = Warehouse(tmp_path)
    yield warehouse
    warehouse.con.close()


@pytest.fixture
def config(tmp_path: Path) -> PipelineConfig:
    return make_config(tmp_path)


def on_days(account_id: str, offsets: list[int], **fields) -> list[Event]:
    return [Event(account_id, day(offset), **fields) for offset in offsets]


# --------------------------------------------------------------------------- windows and counts


def test_usage_frequency_at_the_active_day_thresholds(wh, config):
    wh.accounts(D, *({"account_id": a} for a in ["nine", "eight", "two", "one", "old", "none"]))
    wh.deliver(
        D,
        on_days("nine", [0, -1, -2, -3, -4, -5, -6, -7, -13])  # 9 days of window 14
        + on_days("eight", [0, -2, -4, -6, -8, -10, -12, -13] + [-14, -20])  # 8 in window 14, 10 in 30
        + on_days("two", [-13, -13, 0])  # 2 distinct days
        + on_days("one", [-5, -5, -5])  # 1 day, 3 events
        + on_days("old", [-14, -29]),  # window 30 only
    )
    m = wh.metrics(config)
    assert [m[a]["usage_frequency"] for a in ["nine", "eight", "two", "one", "old", "none"]] == [
        "Daily", "Weekly", "Weekly", "Monthly", "Monthly", "Inactive",
    ]  # fmt: skip
    assert (m["nine"]["active_days_14d"], m["nine"]["active_days_30d"]) == (9, 9)
    assert (m["eight"]["active_days_14d"], m["eight"]["active_days_30d"]) == (8, 10)
    assert (m["two"]["active_days_14d"], m["two"]["events_14d"]) == (2, 3)
    assert (m["one"]["active_days_14d"], m["one"]["events_14d"], m["one"]["events_30d"]) == (1, 3, 3)
    assert (m["old"]["active_days_14d"], m["old"]["active_days_30d"], m["old"]["events_30d"]) == (0, 2, 2)
    # counts are 0, never null, without events
    none = m["none"]
    counts = ("events_14d", "events_30d", "active_days_30d", "active_users_30d", "modules_used_30d")
    assert [none[c] for c in counts] == [0, 0, 0, 0, 0]


def test_window_edges_and_distinct_users(wh, config):
    wh.accounts(D, {"account_id": "A", "licenses": 3})
    wh.deliver(
        D,
        [
            Event("A", day(0), "u1"),
            Event("A", day(-6), "u2"),  # edge of window 7
            Event("A", day(-7), "u3"),  # just outside window 7
            Event("A", day(-13), "u4"),  # edge of window 14
            Event("A", day(-29), "u5"),  # edge of window 30
            Event("A", day(-30), "u6"),  # outside every window
            Event("A", day(1), "u7"),  # tomorrow (allowed in D's delivery) is outside every window
            Event("A", day(-1), "u1"),  # u1 again: counted once
            Event("A", day(0), None),  # no user: an event, not a user
        ],
    )
    a = wh.metrics(config)["A"]
    assert [a[f"active_users_{n}d"] for n in (1, 7, 14, 30)] == [1, 2, 4, 5]
    assert (a["events_14d"], a["events_30d"]) == (6, 7)
    assert a["license_utilization"] == 100 * 5 / 3  # 166.66666666666666: not rounded, not capped


def test_days_since_active_counts_back_to_the_last_active_day_within_window_30(wh, config):
    accounts = ["today", "yesterday", "edge", "outside", "tomorrow_only", "none"]
    wh.accounts(D, *({"account_id": a} for a in accounts))
    wh.deliver(
        D,
        on_days("today", [0, -3])
        + on_days("yesterday", [-1, -20])
        + on_days("edge", [-29])  # the first day of window 30
        + on_days("outside", [-30])  # one day before it: as if never active
        + on_days("tomorrow_only", [1]),  # D + 1 is outside every window of D
    )
    m = wh.metrics(config)
    assert [m[a]["days_since_active_30d"] for a in accounts] == [0, 1, 29, 30, 30, 30]
    # a late event delivered on D + 1 for D - 5 counts from D + 1 on, not for D
    wh.deliver(day(1), on_days("edge", [-5]))
    assert wh.metrics(config)["edge"]["days_since_active_30d"] == 29
    assert wh.metrics(config, as_of=day(1))["edge"]["days_since_active_30d"] == 6


def test_only_events_delivered_by_d_count(wh, config):
    wh.accounts(D, {"account_id": "A"})
    wh.deliver(D, [Event("A", day(0), "u1")])
    wh.deliver(day(1), [Event("A", day(-1), "u2"), Event("A", day(1), "u3")])  # late and next-day events
    assert wh.metrics(config)["A"]["active_users_30d"] == 1
    assert wh.metrics(config, as_of=day(1))["A"]["active_users_30d"] == 3


def test_modules_and_actions_distinct_non_null(wh, config):
    wh.accounts(D, {"account_id": "A"})
    wh.deliver(
        D,
        [
            Event("A", day(0), action="Open", module="Clients"),
            Event("A", day(-3), action="Open", module="Invoices"),
            Event("A", day(-29), action="Send invoice", module=None),
            Event("A", day(-30), action="Delete", module="Admin"),  # outside window 30
        ],
    )
    a = wh.metrics(config)["A"]
    assert (a["modules_used_30d"], a["actions_used_30d"]) == (2, 2)


def test_distinct_actions_count_across_bit_sets_of_two_lengths(wh, config):
    """510 actions numbered on day -1 make 512-bit sets; 5 more on D (numbers 511-515) make
    A's set of D 1024 bits long, while B's of D (number 510) stays 512: window 30 of D ORs both
    lengths, and re-running day -1 after writes its rows as they were (docs/data-model.md#bit-sets)."""
    wh.accounts(D, {"account_id": "A"}, {"account_id": "B"})
    wh.deliver(day(-1), [Event("A", day(-1), action=f"a{n:03}") for n in range(510)], action_limit=1000)
    again_and_new = [Event("A", D, action=a) for a in ["a000", "b0", "b1", "b2", "b3", "b4"]]
    wh.deliver(D, [*again_and_new, Event("B", D, action="a509", module=None)], action_limit=1000)
    aggregates = "SELECT * EXCLUDE (run_id) FROM usage_account_days ORDER BY ALL"
    lengths = "SELECT partition_date, account_id, bit_length(action_bits) FROM usage_account_days ORDER BY ALL"
    assert wh.con.execute(lengths).fetchall() == [(day(-1), "A", 512), (D, "A", 1024), (D, "B", 512)]
    metrics = wh.metrics(config)
    assert (metrics["A"]["actions_used_30d"], metrics["B"]["actions_used_30d"]) == (515, 1)
    assert (metrics["A"]["modules_used_30d"], metrics["B"]["modules_used_30d"]) == (1, 0)
    assert wh.metrics(config, as_of=day(-1))["A"]["actions_used_30d"] == 510
    assert aggregates_match_events(wh.con)
    before = wh.con.execute(aggregates).fetchall()
    wh.ingest(day(-1), action_limit=1000)
    assert wh.con.execute(aggregates).fetchall() == before


def test_licenses_zero_or_null_give_no_utilization(wh, config):
    wh.accounts(D, {"account_id": "zero", "licenses": 0}, {"account_id": "null"}, {"account_id": "two", "licenses": 2})
    wh.deliver(D, [Event("zero", day(0), "u"), Event("null", day(0), "u"), Event("two", day(0), "u")])
    m = wh.metrics(config)
    assert m["zero"]["license_utilization"] is None
    assert m["null"]["license_utilization"] is None
    assert m["two"]["license_utilization"] == 50.0


def test_age_and_renewal_including_an_account_created_after_d(wh, config):
    wh.accounts(
        D,
        {"account_id": "young", "create_date": day(-3), "renewal_date": day(45)},
        {"account_id": "future", "create_date": day(2)},
    )
    m = wh.metrics(config)
    assert (m["young"]["account_age_days"], m["young"]["days_to_renewal"]) == (3, 45)
    assert m["future"]["account_age_days"] == -2
    assert m["future"]["engagement_score"] == 0  # created after D: no day of window 14 counts


# --------------------------------------------------------------------------- engagement


def test_engagement_in_a_peer_group_of_50_with_exact_arithmetic(wh, config):
    # P01..P50 (status Pro): account i has 14 * i events over window 14, so avg = i
    accounts = [f"P{i:02d}" for i in range(1, 51)]
    wh.accounts(D, *({"account_id": a} for a in accounts))
    wh.deliver(D, [Event(a, day(-(n % 14))) for i, a in enumerate(accounts, start=1) for n in range(14 * i)])
    m = wh.metrics(config)
    # k = i peers have avg <= i, N = 50: ceil(100 i / 50) = 2 i
    assert [m[a]["engagement_score"] for a in accounts] == [2 * i for i in range(1, 51)]


def test_engagement_ties_share_the_highest_rank(wh, config):
    wh.accounts(D, *({"account_id": a} for a in ["low", "tie1", "tie2", "top"]))
    events = (
        on_days("low", [0] * 14) + on_days("tie1", [0] * 28) + on_days("tie2", [-1] * 28) + on_days("top", [0] * 42)
    )
    wh.deliver(D, events)
    m = wh.metrics(config)
    # avgs 1, 2, 2, 3 -> k = 1, 3, 3, 4 of N = 4 -> ceil(25 k)
    assert [m[a]["engagement_score"] for a in ["low", "tie1", "tie2", "top"]] == [25, 75, 75, 100]


def test_engagement_avg_exactly_one_is_a_peer_and_just_below_is_zero(wh, config):
    wh.accounts(D, {"account_id": "exact"}, {"account_id": "below"}, {"account_id": "busy"})
    wh.deliver(D, on_days("exact", [0] * 14) + on_days("below", [0] * 13) + on_days("busy", [0] * 70))
    m = wh.metrics(config)
    assert m["below"]["engagement_score"] == 0  # 13 / 14 < 1
    assert m["exact"]["engagement_score"] == 50  # avg 1.0: k = 1 of N = 2
    assert m["busy"]["engagement_score"] == 100


def test_engagement_of_a_3_day_old_account_counts_4_days(wh, config):
    # created D-3: window 14 has 4 days on or after create_date; events before it do not count
    wh.accounts(D, {"account_id": "new", "create_date": day(-3)}, {"account_id": "old"})
    wh.deliver(D, on_days("new", [-3, -2, -1, 0] + [-5] * 10) + on_days("old", [0] * 14 + [-20] * 5))
    m = wh.metrics(config)
    # new: 4 events / 4 days = 1.0; old: 14 / 14 = 1.0 -> a tie at avg 1: k = 2 of N = 2
    assert m["new"]["engagement_score"] == 100
    assert m["old"]["engagement_score"] == 100


def test_engagement_peers_are_same_status_free_or_paying(wh, config):
    wh.accounts(
        D,
        {"account_id": "pro1"}, {"account_id": "pro2"},
        {"account_id": "trial", "status": "Trial", "status_group": "Free"},
        {"account_id": "gone", "status": "Cancelled", "status_group": "Canceled"},
        {"account_id": "odd", "status": "Legacy", "status_group": "Unknown"},
    )  # fmt: skip
    wh.deliver(
        D,
        on_days("pro1", [0] * 14) + on_days("pro2", [0] * 28) + on_days("trial", [0] * 14)
        + on_days("gone", [0] * 99) + on_days("odd", [0] * 99) + on_days("stranger", [0] * 99),
    )  # fmt: skip
    m = wh.metrics(config)
    assert (m["pro1"]["engagement_score"], m["pro2"]["engagement_score"]) == (50, 100)
    assert m["trial"]["engagement_score"] == 100  # alone among Trial accounts
    assert m["gone"]["engagement_score"] is None
    assert m["odd"]["engagement_score"] is None
    # an ID seen only in events gets a row as an unknown account
    assert (m["stranger"]["account_type"], m["stranger"]["status_group"], m["stranger"]["events_30d"]) == (
        "unknown", "Unknown", 99,
    )  # fmt: skip
    assert m["stranger"]["engagement_score"] is None


# --------------------------------------------------------------------------- snapshots


def test_the_snapshot_in_force_is_the_newest_on_or_before_d(wh, config):
    wh.accounts(day(-2), {"account_id": "A", "status": "Trial", "status_group": "Free"})
    wh.accounts(day(0), {"account_id": "A", "status": "Pro"})
    wh.accounts(day(1), {"account_id": "A", "status": "Cancelled", "status_group": "Canceled"})
    assert wh.metrics(config, as_of=day(-1))["A"]["status"] == "Trial"
    assert wh.metrics(config, as_of=day(0))["A"]["status"] == "Pro"
    # before the first snapshot, the oldest one stands in
    first = wh.metrics(config, as_of=day(-5))["A"]
    assert (first["status"], first["snapshot_date"]) == ("Trial", day(-2))


def test_rerunning_a_day_replaces_its_rows(wh, config):
    wh.accounts(D, {"account_id": "A"})
    wh.deliver(D, on_days("A", [0]))
    first = wh.metrics(config)
    again = wh.metrics(config)
    assert {k: {c: v for c, v in r.items() if c != "run_id"} for k, r in first.items()} == {
        k: {c: v for c, v in r.items() if c != "run_id"} for k, r in again.items()
    }
    [(rows,)] = wh.con.execute("SELECT count(*) FROM account_metrics").fetchall()
    assert rows == 1


# --------------------------------------------------------------------------- custom metrics


def write_sql(root: Path, name: str, text: str) -> str:
    (root / name).write_text(text)
    return name


def test_custom_metrics_of_every_kind(wh, tmp_path):
    sql = write_sql(
        tmp_path,
        "escalations.sql",
        "SELECT account_id, count(*) AS value FROM metric_events "
        "WHERE action = 'Escalate' AND event_date BETWEEN $as_of - 6 AND $as_of GROUP BY account_id",
    )
    config = make_config(
        tmp_path,
        {
            "invoices_7d": {"count_action": "Send invoice", "window": 7},
            "client_users": {"distinct_users_of_module": "Clients", "window": 30},
            "escalations": {"sql": sql},
        },
    )
    wh.accounts(D, {"account_id": "A"}, {"account_id": "B"})
    wh.deliver(
        D,
        [
            Event("A", day(0), "u1", action="Send invoice"),
            Event("A", day(-6), "u1", action="Send invoice"),
            Event("A", day(-7), "u1", action="Send invoice"),  # outside window 7
            Event("A", day(-3), "u1", action="Open", module="Clients"),
            Event("A", day(-29), "u2", action="Open", module="Clients"),
            Event("A", day(-2), None, action="Open", module="Clients"),  # no user
            Event("A", day(-2), "u3", action="Open", module="Invoices"),
            Event("A", day(0), "u1", action="Escalate"),
            Event("A", day(-7), "u1", action="Escalate"),  # outside the query's window
        ],
    )
    m = wh.metrics(config)
    assert (m["A"]["invoices_7d"], m["A"]["client_users"], m["A"]["escalations"]) == (2.0, 2.0, 1.0)
    # counts are 0 without events; a sql metric that returns no row gives no value
    assert (m["B"]["invoices_7d"], m["B"]["client_users"], m["B"]["escalations"]) == (0.0, 0.0, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 'A' AS account_id, 1 AS value; SELECT 1", "exactly one SELECT"),
        ("DELETE FROM usage_events", "exactly one SELECT"),
        ("SELECT 'A' AS account_id", r"must return \(account_id, value\)"),
        ("SELECT 'A' AS account_id, 1 AS value UNION ALL SELECT 'A', 2", "more than one row per account"),
        ("SELECT 'A' AS account_id, 'lots' AS value", "failed for 2025-11-20"),
        ("SELECT account_id, $day AS value FROM metric_accounts", "unknown parameter"),
    ],
)
def test_a_bad_sql_metric_is_a_clear_error_naming_the_file(wh, tmp_path, text, message):
    config = make_config(tmp_path, {"broken": {"sql": write_sql(tmp_path, "broken.sql", text)}})
    wh.accounts(D, {"account_id": "A"})
    with pytest.raises(MetricQueryError, match=message) as raised:
        wh.metrics(config)
    assert "broken.sql" in str(raised.value)
    [(rows,)] = wh.con.execute("SELECT count(*) FROM account_metrics").fetchall()
    assert rows == 0  # nothing written


# --------------------------------------------------------------------------- daily aggregates


def aggregates_match_events(con) -> bool:
    """The daily aggregates equal a rebuild from usage_events (every delivery day)."""
    modules = "list_sort(coalesce(list(DISTINCT module) FILTER (module IS NOT NULL), []))"
    actions = "list_sort(list(DISTINCT action))"
    pairs = [
        (
            f"SELECT partition_date, event_date, account_id, count(*), {modules} FROM usage_events GROUP BY ALL",
            bit_set_values("module", "module_bits"),
        ),
        (
            f"SELECT partition_date, event_date, account_id, count(*), {actions} FROM usage_events GROUP BY ALL",
            bit_set_values("action", "action_bits"),
        ),
        (
            "SELECT partition_date, event_date, account_id, list_sort(list({'key': action, 'value': n})) "
            "FROM (SELECT partition_date, event_date, account_id, action, count(*) AS n FROM usage_events "
            "GROUP BY ALL) GROUP BY ALL",
            "SELECT partition_date, event_date, account_id, list_sort(map_entries(action_events)) "
            "FROM usage_account_days",
        ),
        (
            f"SELECT partition_date, event_date, account_id, user_id, count(*), {modules} FROM usage_events "
            "WHERE user_id IS NOT NULL GROUP BY ALL",
            "SELECT partition_date, event_date, account_id, user_id, events, list_sort(modules) FROM usage_user_days",
        ),
    ]
    differences = " + ".join(
        f"(SELECT count(*) FROM (({a}) EXCEPT ALL ({b}))) + (SELECT count(*) FROM (({b}) EXCEPT ALL ({a})))"
        for a, b in pairs
    )
    [(count,)] = con.execute(f"SELECT {differences}").fetchall()
    return count == 0


def test_an_earlier_delivery_takes_an_event_from_a_later_days_aggregates(wh, config):
    wh.accounts(D, {"account_id": "A"})
    # the 21st is materialised first and holds e-shared; then the 20th arrives with it too
    write_events_csv(wh.root / "landing", day(1).isoformat(), "late.csv", [
        {"event_id": "shared", "ts": f"{day(0)}T08:00:00Z", "account_id": "A", "user_id": "u1", "action": "View"},
    ])  # fmt: skip
    ingest_delivery(wh.con, landing=wh.root / "landing", partition_date=day(1), module_limit=100, action_limit=500,
                    run_id="test")  # fmt: skip
    assert wh.metrics(config)["A"]["events_30d"] == 0  # not known at the end of the 20th yet
    write_events_csv(wh.root / "landing", day(0).isoformat(), "early.csv", [
        {"event_id": "shared", "ts": f"{day(0)}T08:00:00Z", "account_id": "A", "user_id": "u1", "action": "View"},
    ])  # fmt: skip
    ingest_delivery(wh.con, landing=wh.root / "landing", partition_date=day(0), module_limit=100, action_limit=500,
                    run_id="test")  # fmt: skip
    assert aggregates_match_events(wh.con)
    assert wh.metrics(config)["A"]["events_30d"] == 1
    assert wh.metrics(config, as_of=day(1))["A"]["events_30d"] == 1  # one event, not two
    # the 20th re-delivered without it: the 21st's copy is the event again
    (wh.root / "landing" / "usage" / f"date={day(0)}" / "early.csv").unlink()
    ingest_delivery(wh.con, landing=wh.root / "landing", partition_date=day(0), module_limit=100, action_limit=500,
                    run_id="test")  # fmt: skip
    assert aggregates_match_events(wh.con)
    assert wh.metrics(config)["A"]["events_30d"] == 0
    assert wh.metrics(config, as_of=day(1))["A"]["events_30d"] == 1


def test_aggregates_follow_events_moved_by_the_limits(wh, tmp_path):
    # limits of 1 action: the 21st (materialised first) admits 'Late'; then the 20th brings
    # 'Early', which comes first, so the 21st's events become limit rejections
    wh.accounts(D, {"account_id": "A"})
    wh.deliver(day(1), [Event("A", day(1), "u1", action="Late")])
    write_events_csv(wh.root / "landing", day(0).isoformat(), "x.csv", [
        {"event_id": "first", "ts": f"{day(0)}T08:00:00Z", "account_id": "A", "user_id": "u2", "action": "Early"},
    ])  # fmt: skip
    ingest_delivery(wh.con, landing=wh.root / "landing", partition_date=day(0), module_limit=100, action_limit=1,
                    run_id="test")  # fmt: skip
    assert aggregates_match_events(wh.con)
    [(stored,)] = wh.con.execute("SELECT list(action ORDER BY action) FROM usage_events").fetchall()
    assert stored == ["Early"]
