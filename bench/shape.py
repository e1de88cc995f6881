"""Tenants of other shapes for the benchmarks (issue 14): users per account, actions per
module, modules, profiles, and a count_action, a distinct_users_of_module and a sql custom
metric in the config.

`shape_tenant` generates one (CRM exports and parquet deliveries, through
`cs_pipeline.demo.generator.generate_tenant`'s optional shape parameters) with its config and
SQL metric file, once per workdir, shape and size; later calls reuse it.
"""

import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from tenant import END_DATE  # bench/tenant.py: the script's folder is on sys.path

from cs_pipeline.demo.generator import generate_tenant


@dataclass(frozen=True)
class Shape:
    """A tenant's shape: contacts per account (low, high; the users its events come from),
    modules and actions per module of its events, and how many profiles its config has (1-5)."""

    name: str
    users_per_account: tuple[int, int]
    modules: int
    actions_per_module: int
    profiles: int

    def module_actions(self) -> dict[str, list[tuple[str, float]]]:
        """Module -> (action, relative frequency): a few actions of each module are frequent,
        most rare (1 / rank), and earlier modules are busier."""
        return {
            module_name(m): [
                (action_name(m, a), 1.0 / ((a + 1) * (m + 1) ** 0.5)) for a in range(self.actions_per_module)
            ]
            for m in range(self.modules)
        }


# At least four shapes; `issue-14` is the tenant nobody tuned for that issue 14 measured: up to
# 20 active users per account a day, 40 actions per module, 5 profiles. `wide` has more distinct
# actions (800) than the default limit (500): the action limit rejects the rarest.
SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("issue-14", users_per_account=(1, 20), modules=12, actions_per_module=40, profiles=5),
        Shape("few-users", users_per_account=(1, 2), modules=6, actions_per_module=5, profiles=1),
        Shape("mid", users_per_account=(5, 10), modules=25, actions_per_module=20, profiles=3),
        Shape("wide", users_per_account=(10, 20), modules=100, actions_per_module=8, profiles=4),
    )
}


def module_name(index: int) -> str:
    return f"Module {index + 1:03d}"


def action_name(module: int, action: int) -> str:
    return f"{module_name(module)} action {action + 1:02d}"


SQL_METRIC = f"""\
-- distinct users of {module_name(1)} in window 7, over the raw events
SELECT account_id, count(DISTINCT user_id)::DOUBLE AS value
FROM metric_events
WHERE module = '{module_name(1)}' AND event_date BETWEEN CAST($as_of AS DATE) - 6 AND CAST($as_of AS DATE)
GROUP BY account_id
"""

# The profile pool, in config order; a shape with n profiles takes the first n - 1 and `default`.
PROFILES = (
    """\
  - name: onboarding
    when: [{metric: account_age_days, op: "<", value: 30}]
    good: [{metric: active_users_7d, op: ">=", value: 1}]
    poor: [{metric: usage_frequency, op: "==", value: Inactive}]
""",
    """\
  - name: high_touch
    when: [{metric: segment, op: "==", value: Enterprise}]
    good:
      - {metric: usage_frequency, op: ">=", value: Weekly}
      - {metric: engagement_score, op: ">=", value: 60}
      - {metric: key_action_30d, op: ">=", value: 5}
      - {metric: csm_risk, op: in, value: ["0 - NO RISK"]}
    poor:
      - {metric: engagement_score, op: "<", value: 10}
      - {metric: module_users_14d, op: "<", value: 1}
      - {metric: csm_risk, op: in, value: ["3 - HIGH", "4 - CRITICAL"]}
""",
    """\
  - name: digital
    when: [{metric: status_group, op: "==", value: Paying}]
    dimensions:
      - name: usage
        weight: 2
        metrics:
          - {metric: engagement_score, good: {op: ">=", value: 60}, poor: {op: "<", value: 10}}
          - {metric: usage_frequency, good: {op: ">=", value: Weekly}, poor: {op: "==", value: Inactive}}
          - {metric: days_since_active_30d, weight: 0.5, good: {op: "<=", value: 2}, poor: {op: ">=", value: 14}}
      - name: adoption
        weight: 1.5
        metrics:
          - {metric: license_utilization, good: {op: ">=", value: 50}, poor: {op: "<", value: 20}}
          - {metric: modules_used_30d, good: {op: ">=", value: 4}, poor: {op: "<", value: 1}}
          - {metric: weekly_module_users, good: {op: ">=", value: 2}, poor: {op: "is_empty"}}
    bands: {average_from: 50, good_from: 80}
""",
    """\
  - name: free
    when: [{metric: status_group, op: "==", value: Free}]
    good:
      - {metric: actions_used_30d, op: ">=", value: 10}
      - {metric: rollup_active_users_30d, op: ">=", value: 3}
    poor:
      - {metric: active_days_30d, op: "<", value: 2}
""",
)
DEFAULT_PROFILE = """\
  - name: default
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
    poor: [{metric: usage_frequency, op: "==", value: Inactive}]
"""


def shape_config(shape: Shape, first_day: date) -> str:
    """The config of a shape's tenant: its custom metrics and profiles."""
    if not 1 <= shape.profiles <= len(PROFILES) + 1:
        raise ValueError(f"shape {shape.name}: profiles must be 1-{len(PROFILES) + 1}")
    profiles = "".join(PROFILES[: shape.profiles - 1]) + DEFAULT_PROFILE
    return f"""\
crm:
  source: files
  files_dir: crm/
  mapping: {{account: {{attributes: {{csm_risk: CSM_Risk__c, segment: Segment__c}}}}}}
landing: landing/
warehouse: warehouse.duckdb
start_date: "{first_day.isoformat()}"
metrics:
  key_action_30d: {{count_action: "{action_name(0, 0)}", window: 30}}
  module_users_14d: {{distinct_users_of_module: "{module_name(0)}", window: 14}}
  weekly_module_users: {{sql: sql/metrics/weekly_module_users.sql}}
profiles:
{profiles}"""


def shape_tenant(
    workdir: Path, shape: Shape, *, accounts: int, events_per_day: int, days: int, crm_export_every: int = 7
) -> list[date]:
    """Generate the shape's tenant, config and SQL metric in workdir unless there already;
    returns its days, oldest first."""
    window = [END_DATE - timedelta(days=n) for n in reversed(range(days))]
    lowest, highest = shape.users_per_account
    marker = workdir / (
        f"generated-{shape.name}-u{lowest}-{highest}-m{shape.modules}-a{shape.actions_per_module}-p{shape.profiles}"
        f"-{accounts}-{events_per_day}-{days}-{crm_export_every}-{END_DATE}"
    )
    if not marker.exists():
        shutil.rmtree(workdir, ignore_errors=True)
        started = time.monotonic()
        summary = generate_tenant(
            workdir,
            end_date=END_DATE,
            days=days,
            accounts=accounts,
            events_per_day=events_per_day,
            formats=("parquet",),
            crm_export_every=crm_export_every,
            module_actions=shape.module_actions(),
            contacts_per_account=shape.users_per_account,
        )
        (workdir / "sql" / "metrics").mkdir(parents=True)
        (workdir / "sql" / "metrics" / "weekly_module_users.sql").write_text(SQL_METRIC)
        (workdir / "cs_pipeline.yaml").write_text(shape_config(shape, window[0]))
        print(
            f"generated {shape.name}: {summary.events_written:,} events in {time.monotonic() - started:.0f}s",
            flush=True,
        )
        marker.touch()
    return window
