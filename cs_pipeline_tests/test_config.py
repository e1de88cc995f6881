"""Config loading and validation (docs/configuration.md)."""

import datetime as dt
import hashlib
import re
from pathlib import Path

import duckdb
import pytest
import yaml

from cs_pipeline.config import (
    ENV_VAR,
    ConfigError,
    PipelineConfig,
    default_config_path,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "cs_pipeline.yaml"

# The shape every config section takes (docs/configuration.md): it must load, and the bundled
# demo config is exactly this (test_bundled_demo_is_the_reference_example).
REFERENCE_EXAMPLE = """\
crm:
  source: files                  # or salesforce (credentials from env vars only)
  files_dir: crm/
  product_separator: "_"
  salesforce: {api_version: "62.0", bulk_threshold: 10000, overlap_minutes: 10}
  mapping:                       # overrides of the default mapping
    account: {attributes: {csm_risk: CSM_Risk__c, segment: Segment__c}}
landing: landing/
warehouse: warehouse.duckdb
statuses: {Free: [Trial, Internal-use], Paying: [Personal, Pro, Enterprise], Canceled: [Cancelled]}
limits: {modules: 100, actions: 500}
metrics:
  invoices_per_month: {count_action: Send invoice, window: 30}
  active_clients: {distinct_users_of_module: Clients, window: 30}
  escalations: {sql: sql/metrics/escalations.sql}
profiles:                        # ordered; first match wins
  - name: onboarding
    when: [{metric: account_age_days, op: "<", value: 30}]
    good: [{metric: active_users_7d, op: ">=", value: 1}]
    poor: [{metric: usage_frequency, op: "==", value: Inactive}]
  - name: high_touch
    when: [{metric: segment, op: "==", value: Enterprise}]
    good:
      - {metric: usage_frequency, op: ">=", value: Weekly}
      - {metric: engagement_score, op: ">=", value: 60}
      - {metric: license_utilization, op: ">=", value: 50}
      - {metric: csm_risk, op: in, value: ["0 - NO RISK"]}
    poor:
      - {metric: engagement_score, op: "<", value: 10}
      - {metric: csm_risk, op: in, value: ["3 - HIGH", "4 - CRITICAL"]}
  - name: digital
    when: [{metric: status_group, op: "==", value: Paying}]
    dimensions:
      - name: usage
        weight: 2
        metrics:
          - {metric: engagement_score, weight: 1, good: {op: ">=", value: 60}, poor: {op: "<", value: 10}}
          - {metric: usage_frequency, weight: 1, good: {op: ">=", value: Weekly}, poor: {op: "==", value: Inactive}}
      - name: adoption
        weight: 1
        metrics:
          - {metric: license_utilization, weight: 1, good: {op: ">=", value: 50}, poor: {op: "<", value: 20}}
    bands: {average_from: 50, good_from: 80}
  - name: default
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
    poor: [{metric: usage_frequency, op: "==", value: Inactive}]
rollups: {subaccount_health: {by: contract_value, poor_share: 0.5, good_share: 0.5}}
retention: {free_inactive_days: 90}
"""

MINIMAL = """\
crm: {files_dir: crm}
landing: landing
warehouse: wh.duckdb
profiles:
  - name: default
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
"""


def write(tmp_path: Path, text: str, name: str = "cs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def example_file(tmp_path: Path) -> Path:
    sql = tmp_path / "sql" / "metrics" / "escalations.sql"
    sql.parent.mkdir(parents=True, exist_ok=True)
    sql.write_text("SELECT 'A' AS account_id, 1.0 AS value")
    return write(tmp_path, REFERENCE_EXAMPLE)


def edited(tmp_path: Path, edit) -> Path:
    """The reference example with one change made to its parsed YAML."""
    data = yaml.safe_load(REFERENCE_EXAMPLE)
    edit(data)
    example_file(tmp_path)
    return write(tmp_path, yaml.safe_dump(data, sort_keys=False))


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


# --- what loads -------------------------------------------------------------------------


def test_reference_example_loads(tmp_path: Path) -> None:
    path = example_file(tmp_path)
    cfg = load_config(path)

    assert cfg.source_path == path.resolve()
    assert cfg.crm.files_dir == (tmp_path / "crm").resolve()
    assert cfg.landing == (tmp_path / "landing").resolve()
    assert cfg.warehouse == (tmp_path / "warehouse.duckdb").resolve()
    assert cfg.crm.source == "files" and cfg.crm.product_separator == "_"
    assert cfg.crm.salesforce.api_version == "62.0" and cfg.crm.salesforce.bulk_threshold == 10000
    assert cfg.config_hash() == hashlib.sha256(path.read_bytes()).hexdigest()

    assert cfg.profile_names() == ["onboarding", "high_touch", "digital", "default"]
    assert [p.kind for p in cfg.profiles] == ["scorecard", "scorecard", "dimensions", "scorecard"]
    onboarding, high_touch, digital, default = cfg.profiles
    assert default.when == []
    assert (onboarding.when[0].metric, onboarding.when[0].op, onboarding.when[0].value) == ("account_age_days", "<", 30)
    assert [(r.metric, r.kind) for r in high_touch.good] == [
        ("usage_frequency", "ordinal"),
        ("engagement_score", "number"),
        ("license_utilization", "number"),
        ("csm_risk", "text"),
    ]
    assert high_touch.poor[1].value == ["3 - HIGH", "4 - CRITICAL"]
    assert high_touch.when[0].kind == "text"
    assert [d.name for d in digital.dimensions] == ["usage", "adoption"]
    assert digital.dimensions[0].weight == 2
    usage_frequency = digital.dimensions[0].metrics[1]
    assert usage_frequency.good_rule.kind == "ordinal" and usage_frequency.good_rule.value == "Weekly"
    assert (digital.bands.average_from, digital.bands.good_from) == (50, 80)

    assert {name: m.kind for name, m in cfg.metrics.items()} == {
        "invoices_per_month": "count_action",
        "active_clients": "distinct_users_of_module",
        "escalations": "sql",
    }
    assert cfg.metrics["invoices_per_month"].argument == "Send invoice"
    assert cfg.metrics["active_clients"].window == 30
    assert cfg.metrics["escalations"].sql_path == (tmp_path / "sql/metrics/escalations.sql").resolve()

    account = cfg.crm.mapping.account
    assert account.account_id == ["External_Id__c", "Id"]
    assert account.create_date == ["Customer_Since__c", "CreatedDate"]
    assert account.name == ["Name"]
    assert account.attributes == {"csm_risk": "CSM_Risk__c", "segment": "Segment__c"}
    assert cfg.crm.mapping.asset.product_code == ["Product2.ProductCode"]
    assert cfg.crm.mapping.contact.user_id == ["Email"]

    assert cfg.status_catalog() == [
        ("Trial", "Free"), ("Internal-use", "Free"), ("Personal", "Paying"),
        ("Pro", "Paying"), ("Enterprise", "Paying"), ("Cancelled", "Canceled"),
    ]  # fmt: skip
    assert cfg.rollups.subaccount_health.by == "contract_value"
    assert cfg.retention.free_inactive_days == 90
    assert cfg.metric_kind("segment") == "text" and cfg.metric_kind("escalations") == "number"


def test_bundled_demo_is_the_reference_example() -> None:
    body = "".join(line for line in DEMO.read_text().splitlines(keepends=True) if not line.startswith("#"))
    assert body == REFERENCE_EXAMPLE
    cfg = load_config(DEMO)
    assert cfg.profile_names() == ["onboarding", "high_touch", "digital", "default"]
    assert cfg.landing == REPO / "demo" / "landing"
    assert cfg.metrics["escalations"].sql_path == REPO / "demo" / "sql" / "metrics" / "escalations.sql"


def test_demo_escalations_sql_counts_30_days_per_account() -> None:
    con = duckdb.connect()
    con.execute(
        """CREATE VIEW metric_events AS SELECT * FROM (VALUES
             ('e1', DATE '2025-01-01', 'A', 'Escalate ticket'),
             ('e2', DATE '2024-12-03', 'A', 'Escalate ticket'),
             ('e3', DATE '2024-12-02', 'A', 'Escalate ticket'),
             ('e4', DATE '2025-01-01', 'B', 'Send invoice'),
             ('e5', DATE '2025-01-02', 'C', 'Escalate ticket')
           ) t(event_id, event_date, account_id, action)"""
    )
    sql = (REPO / "demo" / "sql" / "metrics" / "escalations.sql").read_text()
    rows = con.execute(sql, {"as_of": dt.date(2025, 1, 1)}).fetchall()
    assert rows == [("A", 2.0)]


def test_defaults_when_sections_are_absent(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.statuses == {
        "Free": ["Trial", "Internal-use"],
        "Paying": ["Personal", "Pro", "Enterprise"],
        "Canceled": ["Cancelled"],
    }
    assert (cfg.limits.modules, cfg.limits.actions) == (100, 500)
    assert cfg.metrics == {}
    sub = cfg.rollups.subaccount_health
    assert (sub.by, sub.poor_share, sub.good_share) == ("contract_value", 0.5, 0.5)
    assert cfg.retention.free_inactive_days == 90
    assert cfg.crm.mapping.account.attributes == {}
    assert cfg.crm.salesforce.overlap_minutes == 10
    assert cfg.profiles[0].poor == []


def test_value_normalisation_and_overrides(tmp_path: Path) -> None:
    text = """\
crm:
  files_dir: crm
  mapping: {account: {name: [Legal_Name__c, Name], attributes: {csm_risk: CSM_Risk__c}}}
landing: landing
warehouse: wh.duckdb
profiles:
  - name: default
    when:
      - {metric: engagement_score, op: ">", value: "3.0"}
      - {metric: csm_risk, op: is_empty}
    poor: [{metric: csm_risk, op: not_in, value: [" low "]}]
retention: {free_inactive_days: null}
"""
    cfg = load_config(write(tmp_path, text))
    when = cfg.profiles[0].when
    assert when[0].value == 3 and isinstance(when[0].value, int)
    assert when[1].value is None
    assert cfg.profiles[0].poor[0].value == ["low"]
    assert cfg.crm.mapping.account.name == ["Legal_Name__c", "Name"]
    assert cfg.crm.mapping.account.account_id == ["External_Id__c", "Id"]  # untouched fields keep defaults
    assert cfg.retention.free_inactive_days is None


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(Exception):
        cfg.landing = Path("/elsewhere")  # type: ignore[misc]
    assert isinstance(cfg, PipelineConfig)


# --- where it comes from ----------------------------------------------------------------


def test_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv(ENV_VAR, str(path))
    assert default_config_path() == path.resolve()
    assert load_config().source_path == path.resolve()


def test_default_path_is_the_bundled_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_config_path() == DEMO
    assert load_config().source_path == DEMO


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    message = error_of(missing)
    assert str(missing) in message and "not found" in message


def test_yaml_syntax_error_and_duplicate_key(tmp_path: Path) -> None:
    assert "invalid YAML at line" in error_of(write(tmp_path, "crm: [\n", "a.yaml"))
    message = error_of(write(tmp_path, MINIMAL + "landing: other\n", "b.yaml"))
    assert "duplicate key 'landing'" in message and str(tmp_path / "b.yaml") in message


# --- what is rejected -------------------------------------------------------------------


def test_misspelt_keys(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["profiles"][0]["whn"] = data["profiles"][0].pop("when")
        data["retension"] = data.pop("retention")

    path = edited(tmp_path, edit)
    message = error_of(path)
    assert f"config {path}: profiles[0].whn: unknown key" in message
    assert "did you mean 'when'?" in message
    assert f"config {path}: retension: unknown key" in message  # every problem is reported at once


def test_unknown_metric_in_rule(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][1]["good"][1].update(metric="engagment_score"))
    message = error_of(path)
    assert "profiles[1].good[1].metric: unknown metric 'engagment_score'" in message
    assert "did you mean 'engagement_score'" in message


def test_bad_op(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][1]["good"][0].update(op="gte"))
    assert error_of(path) == (
        f"config {path}: profiles[1].good[0].op: 'gte' is not a valid op "
        "(use one of >=, >, <=, <, ==, !=, in, not_in, is_empty, is_not_empty)"
    )


def test_wrong_type(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["metrics"]["invoices_per_month"].update(window="thirty"))
    message = error_of(path)
    assert "metrics.invoices_per_month.window: 'thirty' is not a whole number" in message
    assert "pydantic" not in message


def test_window_bounds(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["metrics"]["active_clients"].update(window=31))
    assert "metrics.active_clients.window" in error_of(path)


def test_profile_name_with_pipe(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][2].update(name="digital|v2"))
    assert "profiles[2].name: 'digital|v2' contains |" in error_of(path)


def test_duplicate_profile_name(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][3].update(name="onboarding"))
    assert "profiles: profile name 'onboarding' is used twice" in error_of(path)


def test_scorecard_and_dimensions_together(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][2].update(good=[]))
    assert "profiles[2]: has both good/poor rules and dimensions" in error_of(path)


def test_profile_with_neither_kind(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"].append({"name": "empty"}))
    assert "profiles[4]: needs good/poor rules" in error_of(path)


def test_is_empty_with_a_value(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][1]["poor"][1].update(op="is_empty"))
    assert "profiles[1].poor[1].value: is_empty takes no value" in error_of(path)


def test_ordering_op_on_text_attribute(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][1]["when"][0].update(op=">="))
    message = error_of(path)
    assert "profiles[1].when[0].op: '>=' compares order, but 'segment' is text" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"metric": "engagement_score", "op": ">=", "value": "high"}, "'high' is not a number"),
        ({"metric": "usage_frequency", "op": ">=", "value": "weekly"}, "'weekly' is not a usage frequency"),
        ({"metric": "status_group", "op": "==", "value": "Payin"}, "'Payin' is not a valid status_group"),
        ({"metric": "csm_risk", "op": "in", "value": []}, "in needs a non-empty list"),
        ({"metric": "csm_risk", "op": "==", "value": ["a"]}, "'==' takes one value; use in / not_in"),
        ({"metric": "engagement_score", "op": ">="}, "is required for op '>='"),
        ({"metric": "engagement_score", "op": ">=", "value": True}, "True is not a number"),
        ({"metric": "engagement_score", "op": ">=", "value": 10**400}, "1" + "0" * 56 + "... is not a number"),
    ],
)
def test_rule_values(tmp_path: Path, rule: dict, expected: str) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][0]["when"].append(rule))
    assert f"profiles[0].when[1].value: {expected}" in error_of(path)


def test_dimension_condition_is_checked_against_its_metric(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["profiles"][2]["dimensions"][0]["metrics"][0]["good"]["value"] = "lots"

    message = error_of(edited(tmp_path, edit))
    assert "profiles[2].dimensions[0].metrics[0].good: 'lots' is not a number" in message


def test_bands_out_of_order(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["profiles"][2]["bands"].update(average_from=90))
    assert "profiles[2].bands: average_from (90) must not exceed good_from (80)" in error_of(path)


def test_sql_metric_file_missing(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["metrics"]["escalations"].update(sql="sql/metrics/nope.sql"))
    message = error_of(path)
    assert (
        f"metrics.escalations.sql: SQL file {(tmp_path / 'sql/metrics/nope.sql').resolve()} does not exist" in message
    )


def test_custom_metric_shape_and_names(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["metrics"]["both"] = {"count_action": "a", "sql": "sql/metrics/escalations.sql"}
        data["metrics"]["events_30d"] = {"count_action": "a"}
        data["metrics"]["BadName"] = {"count_action": "a"}

    message = error_of(edited(tmp_path, edit))
    assert "metrics.both: needs exactly one of count_action, distinct_users_of_module, sql" in message
    assert "metrics.events_30d: 'events_30d' is a built-in" in message
    assert "metrics.BadName: 'BadName' is not a valid name" in message


def test_attribute_names(tmp_path: Path) -> None:
    def edit(data: dict) -> None:
        data["crm"]["mapping"]["account"]["attributes"].update(licenses="X__c", escalations="Y__c")

    message = error_of(edited(tmp_path, edit))
    assert "crm.mapping.account.attributes.licenses: 'licenses' is a built-in" in message
    assert "crm.mapping.account.attributes.escalations: 'escalations' is also a custom metric" in message


def test_status_listed_twice(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["statuses"]["Free"].append("pro"))
    assert "statuses: status 'Pro' is listed twice" in error_of(path)


def test_unknown_status_group(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["statuses"].update(Churned=["Gone"]))
    assert "statuses.Churned: 'Churned' is not a valid status group" in error_of(path)


def test_files_dir_required_for_files_source(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d["crm"].pop("files_dir"))
    assert "crm.files_dir: is required when crm.source is files" in error_of(path)
    path = edited(tmp_path, lambda d: d["crm"].pop("files_dir") and d["crm"].update(source="salesforce"))
    assert load_config(path).crm.files_dir is None


def test_error_message_has_no_pydantic_noise(tmp_path: Path) -> None:
    path = edited(tmp_path, lambda d: d.update(limits={"modules": 0, "actions": "many"}))
    message = error_of(path)
    assert "limits.modules: should be greater than 0 (got 0)" in message
    assert "limits.actions: 'many' is not a whole number" in message
    assert not re.search(r"https?://|Input should|Value error", message)
