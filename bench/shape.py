"""Tenants of other shapes for the benchmarks (issue 14): users per account, actions per
module, modules, profiles, and a count_action, a distinct_users_of_module and a sql custom
metric in the config.

`shape_tenant` generates one (CRM exports and parquet deliveries, through
`cs_pipeline.demo.generator.generate_tenant`'s optional shape parameters) with its config and
SQL metric file, once per workdir, shape and size; later calls reuse it.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tenant import generated_tenant  # bench/tenant.py: the script's folder is on sys.path


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
  - name: new_customers
    when: [{metric: account_age_days, op: "<=", value: 45}, {metric: account_type, op: "!=", value: unknown}]
    good: [{metric: active_users_14d, op: ">=", value: 2}, {metric: key_action_30d, op: ">", value: 0}]
    poor: [{metric: days_since_active_30d, op: ">=", value: 7}]
""",
    """\
  - name: strategic
    when: [{metric: segment, op: in, value: [Enterprise, Mid-Market]}, {metric: contract_value, op: ">=", value: 20000}]
    good:
      - {metric: key_action_30d, op: ">=", value: 5}
      - {metric: rollup_license_utilization, op: ">=", value: 40}
      - {metric: engagement_score, op: ">", value: 50}
      - {metric: csm_risk, op: not_in, value: ["2 - MAJOR", "3 - HIGH", "4 - CRITICAL"]}
    poor:
      - {metric: module_users_14d, op: "<", value: 1}
      - {metric: usage_frequency, op: "<=", value: Monthly}
      - {metric: csm_risk, op: "==", value: "4 - CRITICAL"}
""",
    """\
  - name: self_serve
    when: [{metric: status_group, op: "==", value: Paying}]
    dimensions:
      - name: activity
        weight: 2
        metrics:
          - {metric: usage_frequency, good: {op: ">=", value: Weekly}, poor: {op: "==", value: Inactive}}
          - {metric: days_since_active_30d, weight: 0.5, good: {op: "<=", value: 2}, poor: {op: ">=", value: 14}}
          - {metric: engagement_score, weight: 1.5, good: {op: ">=", value: 70}, poor: {op: "<", value: 5}}
      - name: breadth
        weight: 1.5
        metrics:
          - {metric: modules_used_30d, good: {op: ">=", value: 4}, poor: {op: "<", value: 1}}
          - {metric: weekly_module_users, good: {op: ">=", value: 2}, poor: {op: "is_empty"}}
          - {metric: license_utilization, good: {op: ">=", value: 50}, poor: {op: "<", value: 20}}
    bands: {average_from: 45, good_from: 75}
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
    """Generate the shape's tenant in workdir unless it is there already, and write its config
    and SQL metric; returns its days, oldest first."""
    lowest, highest = shape.users_per_account
    window = generated_tenant(
        workdir,
        f"{shape.name}-u{lowest}-{highest}-m{shape.modules}-a{shape.actions_per_module}"
        f"-{accounts}-{events_per_day}-{days}-{crm_export_every}",
        days=days,
        accounts=accounts,
        events_per_day=events_per_day,
        crm_export_every=crm_export_every,
        module_actions=shape.module_actions(),
        contacts_per_account=shape.users_per_account,
    )
    (workdir / "sql" / "metrics").mkdir(parents=True, exist_ok=True)
    (workdir / "sql" / "metrics" / "weekly_module_users.sql").write_text(SQL_METRIC)
    (workdir / "cs_pipeline.yaml").write_text(shape_config(shape, window[0]))
    return window
