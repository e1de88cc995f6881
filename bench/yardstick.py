"""The yardstick: one day's work of the daily run, hand-written in plain DuckDB SQL.

Issue 14 measures the pipeline's daily run against "a hand-written DuckDB script doing the
same work". This is that script. It keeps a DuckDB file of its own (no Dagster, none of the
pipeline's code: only the config is read, with `cs_pipeline.config.load_config`) and, for a
day D with the days before it already done, in one transaction:

  1. reads the CRM export in force for D (the newest `date=` folder on or before D, else the
     oldest) as the accounts: the config's field mapping, product accounts, the hierarchy's
     root / depth / path, the status catalog;
  2. ingests D's delivery (parquet files): trimmed text, blanks as null, e-mails lower-cased, a
     hash as event_id where there is none, the reject reasons, the module and action limits
     (the first values by first delivery day, then first ts there), and each event_id stored
     once: a copy already stored (an earlier delivery) wins, then the first by file and row;
  3. adds D's daily aggregates (events per account and day, per action, modules per account
     and day, users per account and day with their modules);
  4. computes every built-in metric of D (docs/metrics.md, engagement_score exact), the custom
     metrics (count_action, distinct_users_of_module, sql over `metric_events` with $as_of),
     the roll-up metrics;
  5. scores every profile (scorecards and dimensions as docs/health.md: first matching
     profile, left-out rules, exact weighted means, reasons, previous_health), then the
     descendants' health (subaccount_health).

It assumes what a daily run meets: days done oldest first, so a stored copy is always the
earliest delivery and no aggregate of an earlier delivery day changes. What the pipeline does
beyond this list (storing CRM snapshots, `users`, status history, retention, the hierarchy
issues' cuts and reports, out-of-order re-judging, checks, publishing, Dagster's bookkeeping)
is not done here: it is the pipeline's overhead the ratio measures. The CRM export must be
clean of duplicate IDs and parent cycles (the generated tenants are); the script stops if it
is not. DuckDB runs with the pipeline's memory limit (800 MB) unless told otherwise.

`--check WAREHOUSE` compares the yardstick's metrics, roll-ups and health of D with the
pipeline's warehouse of the same tenant and config, column by column, and exits 1 on any
difference: the proof that the yardstick does the same work.

Usage: python bench/yardstick.py --config CFG --db FILE --load-days FIRST LAST   (untimed set-up)
       python bench/yardstick.py --config CFG --db FILE --day D                   (the timed day)
       python bench/yardstick.py --config CFG --db FILE --check WAREHOUSE --day D
"""

import argparse
import math
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import duckdb

from cs_pipeline.config import PipelineConfig, Profile, Rule, load_config

FREQUENCIES = ("Inactive", "Monthly", "Weekly", "Daily")
HEALTH_GROUPS = ("Free", "Paying")
FIELD_LENGTH_LIMIT = 1000
ROLLUP_COLUMNS = (
    "descendants", "rollup_events_30d", "rollup_active_users_30d", "rollup_licenses", "rollup_contract_value",
    "rollup_license_utilization",
)  # fmt: skip
SUBACCOUNT_COLUMNS = ("descendants_good", "descendants_average", "descendants_poor", "subaccount_health")
BUILTIN_METRICS = (
    "active_users_1d", "active_users_7d", "active_users_14d", "active_users_30d", "events_14d", "events_30d",
    "active_days_14d", "active_days_30d", "days_since_active_30d", "modules_used_30d", "actions_used_30d",
    "usage_frequency", "engagement_score", "license_utilization", "account_age_days", "days_to_renewal",
)  # fmt: skip
ACCOUNT_COLUMNS = (
    "account_type", "status", "status_group", "create_date", "renewal_date", "licenses", "contract_value",
    "attributes",
)  # fmt: skip

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (event_id VARCHAR, ts TIMESTAMPTZ, event_date DATE, account_id VARCHAR,
    user_id VARCHAR, module VARCHAR, action VARCHAR, partition_date DATE, source_file VARCHAR, source_row BIGINT);
CREATE TABLE IF NOT EXISTS event_copies AS SELECT * FROM events LIMIT 0;
CREATE TABLE IF NOT EXISTS rejected (partition_date DATE, source_file VARCHAR, source_row BIGINT, reason VARCHAR,
    event_id VARCHAR, ts TIMESTAMPTZ, account_id VARCHAR, user_id VARCHAR, module VARCHAR, action VARCHAR);
CREATE TABLE IF NOT EXISTS vocabulary (kind VARCHAR, value VARCHAR, first_partition DATE, first_ts TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS event_accounts (account_id VARCHAR PRIMARY KEY, first_partition DATE);
CREATE TABLE IF NOT EXISTS account_days (partition_date DATE, event_date DATE, account_id VARCHAR, events BIGINT);
CREATE TABLE IF NOT EXISTS account_day_actions (partition_date DATE, event_date DATE, account_id VARCHAR,
    action VARCHAR, events BIGINT);
CREATE TABLE IF NOT EXISTS account_day_modules (partition_date DATE, event_date DATE, account_id VARCHAR,
    module VARCHAR);
CREATE TABLE IF NOT EXISTS user_days (partition_date DATE, event_date DATE, account_id VARCHAR, user_id VARCHAR,
    modules VARCHAR[]);
CREATE TABLE IF NOT EXISTS account_rollups (date DATE, account_id VARCHAR, descendants BIGINT,
    rollup_events_30d BIGINT, rollup_active_users_30d BIGINT, rollup_licenses DOUBLE, rollup_contract_value DOUBLE,
    rollup_license_utilization DOUBLE, descendants_good BIGINT, descendants_average BIGINT,
    descendants_poor BIGINT, subaccount_health VARCHAR);
CREATE TABLE IF NOT EXISTS account_health (date DATE, account_id VARCHAR, profile VARCHAR, health VARCHAR,
    health_score INTEGER, dimension_scores MAP(VARCHAR, INTEGER), reasons VARCHAR[], previous_health VARCHAR);
"""


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- accounts


def export_folder(files_dir: Path, day: date) -> Path:
    """The CRM export in force for `day`: the newest date= folder on or before it, else the oldest."""
    dated = sorted(files_dir.glob("date=*"))
    if not dated:
        return files_dir
    on_or_before = [f for f in dated if date.fromisoformat(f.name[5:]) <= day]
    return (on_or_before or dated)[-1 if on_or_before else 0]


def clean(text_sql: str) -> str:
    """Trimmed text, a blank as null (as the pipeline cleans every input value)."""
    return f"nullif(trim({text_sql}, E' \\t\\r\\n'), '')"


def first_present(fields: Sequence[str], table: str = "") -> str:
    """The first non-blank of the fields, per record (the config's field mapping)."""
    return "coalesce(" + ", ".join(clean(f"{table}{ident(f)}") for f in fields) + ")"


def as_date(text_sql: str) -> str:
    """A date, or a Salesforce datetime taken as its UTC date."""
    return (
        f"CASE WHEN length({text_sql}) = 10 THEN try_strptime({text_sql}, '%Y-%m-%d')::DATE "
        f"ELSE try_cast({text_sql} AS TIMESTAMPTZ)::DATE END"
    )


def load_accounts(con: duckdb.DuckDBPyConnection, config: PipelineConfig, day: date) -> None:
    """The temp table day_accounts: the accounts of the CRM export in force, with the columns of
    the pipeline's account dimension."""
    folder = export_folder(config.crm.files_dir, day)
    account, asset = config.crm.mapping.account, config.crm.mapping.asset
    attributes = sorted(account.attributes.items())
    entries = ", ".join(f"{{'key': {quoted(n)}, 'value': {first_present([f])}}}" for n, f in attributes)
    attributes_sql = (
        f"map_from_entries(list_filter([{entries}], lambda e: e.value IS NOT NULL))"
        if attributes
        else "MAP {}::MAP(VARCHAR, VARCHAR)"
    )
    catalog = ", ".join(
        f"({quoted(name.lower())}, {quoted(name)}, {quoted(group)})"
        for group, names in config.statuses.items()
        for name in names
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE crm_accounts AS
        SELECT {clean(ident("Id"))} AS salesforce_id, {first_present(account.account_id)} AS account_id,
            {first_present(account.name)} AS name, {first_present(account.parent_id)} AS parent_salesforce_id,
            {first_present(account.status)} AS status, {as_date(first_present(account.create_date))} AS create_date,
            try_cast({first_present(account.contract_value)} AS DOUBLE) AS contract_value,
            {as_date(first_present(account.renewal_date))} AS renewal_date,
            try_cast({first_present(account.licenses)} AS DOUBLE) AS licenses,
            {attributes_sql} AS attributes
        FROM read_csv('{folder / "Account.csv"}', all_varchar = true, header = true)""")
    con.execute("DELETE FROM crm_accounts WHERE account_id IS NULL")
    [(duplicates,)] = con.execute("SELECT count(*) - count(DISTINCT account_id) FROM crm_accounts").fetchall()
    if duplicates:
        sys.exit(f"{folder}: {duplicates} duplicate account IDs; the yardstick needs a clean export")
    code = first_present(asset.product_code, "s.")
    products = (
        f"""
        UNION ALL
        SELECT p.account_id || {quoted(config.crm.product_separator)} || {code},
            p.name || ' - ' || coalesce({first_present(asset.product_name, "s.")}, {code}),
            p.account_id, 'product', {code},
            coalesce({first_present(asset.status, "s.")}, p.status),
            coalesce({as_date(first_present(asset.create_date, "s."))}, p.create_date),
            try_cast({first_present(asset.contract_value, "s.")} AS DOUBLE), NULL::DATE,
            try_cast({first_present(asset.licenses, "s.")} AS DOUBLE), p.attributes
        FROM read_csv('{folder / "Asset.csv"}', all_varchar = true, header = true) s
        JOIN crm_accounts p ON p.salesforce_id = {first_present(asset.account_id, "s.")}
        WHERE {code} IS NOT NULL"""
        if (folder / "Asset.csv").exists()
        else ""
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE crm_nodes AS
        SELECT a.account_id, a.name, p.account_id AS parent_id, 'account' AS account_type, NULL::VARCHAR AS product_key,
            a.status, a.create_date, a.contract_value, a.renewal_date, a.licenses, a.attributes
        FROM crm_accounts a LEFT JOIN crm_accounts p ON p.salesforce_id = a.parent_salesforce_id
        {products}""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE day_accounts AS
        WITH RECURSIVE placed AS (
            SELECT account_id, account_id AS root_id, 0 AS depth, [account_id] AS path
            FROM crm_nodes WHERE parent_id IS NULL
            UNION ALL
            SELECT n.account_id, p.root_id, p.depth + 1, list_append(p.path, n.account_id)
            FROM crm_nodes n JOIN placed p ON n.parent_id = p.account_id
        ),
        catalog(status_key, catalog_status, status_group) AS (VALUES {catalog})
        SELECT n.account_id, n.name, n.parent_id, p.root_id, p.depth::INTEGER AS depth, p.path, n.account_type,
            n.product_key, coalesce(c.catalog_status, n.status) AS status,
            coalesce(c.status_group, 'Unknown') AS status_group, n.create_date, n.contract_value, n.renewal_date,
            n.licenses, n.attributes
        FROM crm_nodes n JOIN placed p USING (account_id)
        LEFT JOIN catalog c ON c.status_key = lower(n.status)""")
    [(nodes, placed)] = con.execute(
        "SELECT (SELECT count(*) FROM crm_nodes), (SELECT count(*) FROM day_accounts)"
    ).fetchall()
    if nodes != placed:
        sys.exit(
            f"{folder}: {nodes - placed} accounts in a parent cycle or duplicated; the yardstick needs a clean export"
        )


# --------------------------------------------------------------------------- ingest


def ingest(con: duckdb.DuckDBPyConnection, config: PipelineConfig, day: date) -> None:
    """D's delivery into events (each event_id once), rejected, vocabulary and event_accounts."""
    folder = config.landing / "usage" / f"date={day.isoformat()}"
    files = sorted(folder.glob("*")) if folder.is_dir() else []
    others = [f.name for f in files if f.is_file() and not f.name.endswith(".parquet")]
    if others:
        sys.exit(f"{folder}: the yardstick reads parquet deliveries only, found {others[:3]}")
    parquet = [str(f) for f in files if f.name.endswith(".parquet")]
    d = f"DATE '{day.isoformat()}'"
    if parquet:
        source = f"read_parquet({parquet!r}, filename = true, file_row_number = true, union_by_name = true)"
        columns = {name for (name, *_rest) in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        field = {c: (ident(c) if c in columns else "NULL::VARCHAR") for c in ("event_id", "user_id", "module")}
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE staged AS
            WITH cleaned AS (
                SELECT parse_filename(filename) AS source_file, file_row_number + 1 AS source_row,
                    {clean(field["event_id"])} AS given_id, ts::TIMESTAMPTZ AS ts,
                    {clean("account_id")} AS account_id,
                    CASE WHEN contains({clean(field["user_id"])}, '@') THEN lower({clean(field["user_id"])})
                         ELSE {clean(field["user_id"])} END AS user_id,
                    {clean(field["module"])} AS module, {clean("action")} AS action
                FROM {source}
            )
            SELECT coalesce(given_id, md5(to_json([strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), account_id, user_id,
                       module, action]))) AS event_id,
                ts, ts::DATE AS event_date, account_id, user_id, module, action, source_file, source_row,
                CASE WHEN greatest(length(given_id), length(account_id), length(user_id), length(module),
                                   length(action)) > {FIELD_LENGTH_LIMIT} THEN 'field_too_long'
                     WHEN account_id IS NULL THEN 'missing_account_id'
                     WHEN action IS NULL THEN 'missing_action'
                     WHEN ts IS NULL THEN 'bad_timestamp'
                     WHEN ts::DATE > {d} + 1 THEN 'future_timestamp' END AS reason
            FROM cleaned""")
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE staged AS "
            "SELECT * EXCLUDE (partition_date), NULL::VARCHAR AS reason FROM events LIMIT 0"
        )
    # limits: values first seen today rank after every earlier one (days run oldest first)
    con.execute(f"""
        INSERT INTO vocabulary
        SELECT kind, value, {d}, min(ts) FROM (
            SELECT 'module' AS kind, module AS value, ts FROM staged WHERE reason IS NULL AND module IS NOT NULL
            UNION ALL SELECT 'action', action, ts FROM staged WHERE reason IS NULL
        ) v
        WHERE NOT EXISTS (SELECT 1 FROM vocabulary o WHERE o.kind = v.kind AND o.value = v.value)
        GROUP BY kind, value""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE allowed AS
        SELECT kind, value FROM (
            SELECT kind, value, row_number() OVER (PARTITION BY kind ORDER BY first_partition, first_ts, value) AS rank
            FROM vocabulary)
        WHERE rank <= CASE kind WHEN 'module' THEN {config.limits.modules} ELSE {config.limits.actions} END""")
    con.execute("""
        UPDATE staged SET reason = CASE
            WHEN module IS NOT NULL AND module NOT IN (SELECT value FROM allowed WHERE kind = 'module')
                THEN 'module_limit'
            ELSE 'action_limit' END
        WHERE reason IS NULL AND (
            (module IS NOT NULL AND module NOT IN (SELECT value FROM allowed WHERE kind = 'module'))
            OR action NOT IN (SELECT value FROM allowed WHERE kind = 'action'))""")
    con.execute(f"""
        INSERT INTO rejected SELECT {d}, source_file, source_row, reason, event_id, ts, account_id, user_id, module,
            action FROM staged WHERE reason IS NOT NULL""")
    # each event_id once: a stored copy (an earlier delivery) wins, then the first by file and row
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ranked AS
        SELECT s.* EXCLUDE (reason), {d} AS partition_date,
            row_number() OVER (PARTITION BY s.event_id ORDER BY s.source_file, s.source_row) = 1
                AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = s.event_id) AS wins
        FROM staged s WHERE s.reason IS NULL""")
    con.execute("""INSERT INTO events SELECT event_id, ts, event_date, account_id, user_id, module, action,
        partition_date, source_file, source_row FROM ranked WHERE wins""")
    con.execute("""INSERT INTO event_copies SELECT event_id, ts, event_date, account_id, user_id, module, action,
        partition_date, source_file, source_row FROM ranked WHERE NOT wins""")
    con.execute(f"""
        INSERT INTO event_accounts SELECT DISTINCT account_id, {d} FROM ranked WHERE wins
        ON CONFLICT DO NOTHING""")


def aggregate(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """D's delivery into the daily aggregates (only D's: days run oldest first)."""
    con.execute("""
        INSERT INTO account_day_actions
        SELECT partition_date, event_date, account_id, action, count(*) FROM ranked WHERE wins GROUP BY ALL""")
    con.execute(f"""
        INSERT INTO account_days
        SELECT partition_date, event_date, account_id, sum(events)::BIGINT FROM account_day_actions
        WHERE partition_date = DATE '{day.isoformat()}' GROUP BY ALL""")
    con.execute("""
        INSERT INTO account_day_modules
        SELECT DISTINCT partition_date, event_date, account_id, module FROM ranked WHERE wins AND module IS NOT NULL""")
    con.execute("""
        INSERT INTO user_days
        SELECT partition_date, event_date, account_id, user_id,
            coalesce(list(module ORDER BY module) FILTER (module IS NOT NULL), [])
        FROM (SELECT DISTINCT partition_date, event_date, account_id, user_id, module FROM ranked
              WHERE wins AND user_id IS NOT NULL)
        GROUP BY ALL""")


# --------------------------------------------------------------------------- metrics


def metrics(con: duckdb.DuckDBPyConnection, config: PipelineConfig, day: date) -> None:
    """account_metrics of D: every account in force and every unknown ID delivered by D."""
    d = f"DATE '{day.isoformat()}'"
    window = f"partition_date <= {d} AND event_date BETWEEN {d} - 29 AND {d}"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE metric_accounts AS
        SELECT *, {d} AS snapshot_date FROM day_accounts
        UNION ALL BY NAME
        SELECT account_id, account_id AS root_id, 0 AS depth, [account_id] AS path, 'unknown' AS account_type,
            'Unknown' AS status_group
        FROM event_accounts WHERE first_partition <= {d} AND account_id NOT IN (SELECT account_id FROM day_accounts)""")
    module_users = {n: m for n, m in config.metrics.items() if m.kind == "distinct_users_of_module"}
    action_counts = {n: m for n, m in config.metrics.items() if m.kind == "count_action"}
    module_last = "".join(
        f", max(event_date) FILTER (list_contains(modules, {quoted(m.argument)})) AS {ident('last_' + n)}"
        for n, m in module_users.items()
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE window_users AS
        SELECT account_id, user_id, max(event_date) AS last_day{module_last}
        FROM user_days WHERE {window} GROUP BY account_id, user_id""")
    user_counts = "".join(
        f", count(*) FILTER ({ident('last_' + n)} > {d} - {m.window}) AS {ident(n)}" for n, m in module_users.items()
    )
    action_sums = "".join(
        f", sum(events) FILTER (action = {quoted(m.argument)} AND event_date > {d} - {m.window}) AS {ident(n)}"
        for n, m in action_counts.items()
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE day_metrics AS
        WITH users AS (
            SELECT account_id, count(*) FILTER (last_day >= {d}) AS active_users_1d,
                count(*) FILTER (last_day >= {d} - 6) AS active_users_7d,
                count(*) FILTER (last_day >= {d} - 13) AS active_users_14d, count(*) AS active_users_30d{user_counts}
            FROM window_users GROUP BY account_id
        ),
        days AS (
            SELECT account_id, event_date, sum(events) AS events FROM account_days WHERE {window} GROUP BY ALL
        ),
        day_stats AS (
            SELECT a.account_id, sum(events) FILTER (event_date >= {d} - 13) AS events_14d, sum(events) AS events_30d,
                count(*) FILTER (event_date >= {d} - 13) AS active_days_14d, count(*) AS active_days_30d,
                max(event_date) AS last_day,
                sum(events) FILTER (event_date >= {d} - 13 AND (a.create_date IS NULL OR event_date >= a.create_date))
                    AS engagement_events
            FROM metric_accounts a JOIN days USING (account_id) GROUP BY a.account_id
        ),
        modules AS (
            SELECT account_id, count(DISTINCT module) AS modules_used_30d FROM account_day_modules
            WHERE {window} GROUP BY account_id
        ),
        actions AS (
            SELECT account_id, count(DISTINCT action) AS actions_used_30d{action_sums}
            FROM account_day_actions WHERE {window} GROUP BY account_id
        ),
        counted AS (
            SELECT a.*,
                coalesce(u.active_users_1d, 0) AS active_users_1d, coalesce(u.active_users_7d, 0) AS active_users_7d,
                coalesce(u.active_users_14d, 0) AS active_users_14d,
                coalesce(u.active_users_30d, 0) AS active_users_30d,
                coalesce(s.events_14d, 0)::BIGINT AS events_14d, coalesce(s.events_30d, 0)::BIGINT AS events_30d,
                coalesce(s.active_days_14d, 0) AS active_days_14d, coalesce(s.active_days_30d, 0) AS active_days_30d,
                coalesce({d} - s.last_day, 30)::INTEGER AS days_since_active_30d,
                coalesce(m.modules_used_30d, 0) AS modules_used_30d,
                coalesce(x.actions_used_30d, 0) AS actions_used_30d,
                coalesce(s.engagement_events, 0) AS engagement_events,
                CASE WHEN a.create_date IS NULL THEN 14
                     ELSE greatest(1, least(14, {d} - a.create_date + 1)) END AS engagement_days
                {"".join(f", coalesce(u.{ident(n)}, 0)::DOUBLE AS {ident(n)}" for n in module_users)}
                {"".join(f", coalesce(x.{ident(n)}, 0)::DOUBLE AS {ident(n)}" for n in action_counts)}
            FROM metric_accounts a
            LEFT JOIN users u USING (account_id) LEFT JOIN day_stats s USING (account_id)
            LEFT JOIN modules m USING (account_id) LEFT JOIN actions x USING (account_id)
        ),
        peers AS (
            SELECT *, status_group IN ('Free', 'Paying') AND engagement_events >= engagement_days AS engaged,
                -- 360360 = lcm(1..14): every average events per day as an exact integer key
                engagement_events * (360360 // engagement_days) AS engagement_key
            FROM counted
        )
        SELECT {d} AS date, * EXCLUDE (engagement_events, engagement_days, engaged, engagement_key),
            CASE WHEN active_days_14d >= 9 THEN 'Daily' WHEN active_days_14d >= 2 THEN 'Weekly'
                 WHEN active_days_30d >= 1 THEN 'Monthly' ELSE 'Inactive' END AS usage_frequency,
            CASE WHEN status_group NOT IN ('Free', 'Paying') OR status_group IS NULL THEN NULL
                 WHEN NOT engaged THEN 0
                 ELSE (100 * count(*) OVER (PARTITION BY engaged, status ORDER BY engagement_key)
                       + count(*) OVER (PARTITION BY engaged, status) - 1)
                      // count(*) OVER (PARTITION BY engaged, status) END::INTEGER AS engagement_score,
            CASE WHEN licenses > 0 THEN 100 * active_users_30d / licenses END AS license_utilization,
            ({d} - create_date)::INTEGER AS account_age_days, (renewal_date - {d})::INTEGER AS days_to_renewal
        FROM peers""")
    for name, metric in config.metrics.items():
        if metric.kind == "sql":
            sql_metric(con, name, metric.sql_path, day)
    con.execute(f"DELETE FROM account_metrics WHERE date = {d}")
    con.execute("INSERT INTO account_metrics BY NAME SELECT * FROM day_metrics")


def sql_metric(con: duckdb.DuckDBPyConnection, name: str, path: Path, day: date) -> None:
    """A custom sql metric over metric_events (the events known at the end of D) and metric_accounts."""
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW metric_events AS
        SELECT event_id, ts, event_date, account_id, user_id, module, action FROM events
        WHERE partition_date <= DATE '{day.isoformat()}'""")
    query = path.read_text().strip().rstrip(";")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE sql_metric_raw AS {query}", {"as_of": day} if "$as_of" in query else None
    )
    account, value = (ident(c) for (c, *_rest) in con.execute("DESCRIBE sql_metric_raw").fetchall())
    [(duplicates,)] = con.execute(
        f"SELECT count(*) - count(DISTINCT {account}::VARCHAR) FROM sql_metric_raw"
    ).fetchall()
    if duplicates:
        sys.exit(f"custom metric {name!r} ({path}): more than one row per account for {day}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE day_metrics AS
        SELECT m.*, v.value AS {ident(name)} FROM day_metrics m
        LEFT JOIN (SELECT {account}::VARCHAR AS account_id, {value}::DOUBLE AS value FROM sql_metric_raw) v
        USING (account_id)""")


def rollups(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Roll-up metrics of every account with descendants, over its subtree."""
    d = f"DATE '{day.isoformat()}'"
    con.execute("""
        CREATE OR REPLACE TEMP TABLE subtrees AS
        SELECT ancestor, account_id AS member FROM day_accounts, unnest(path) AS p(ancestor)""")
    con.execute(f"DELETE FROM account_rollups WHERE date = {d}")
    con.execute(f"""
        INSERT INTO account_rollups
        WITH totals AS (
            SELECT t.ancestor AS account_id, count(*) - 1 AS descendants, sum(m.events_30d) AS events,
                sum(m.licenses) AS licenses, sum(m.contract_value) AS contract_value
            FROM subtrees t JOIN day_metrics m ON m.account_id = t.member
            GROUP BY t.ancestor HAVING count(*) > 1
        ),
        users AS (
            SELECT t.ancestor AS account_id, count(DISTINCT u.user_id) AS users
            FROM window_users u JOIN subtrees t ON t.member = u.account_id
            WHERE t.ancestor IN (SELECT account_id FROM totals) GROUP BY t.ancestor
        )
        SELECT {d}, account_id, descendants, events, coalesce(users, 0), licenses, contract_value,
            CASE WHEN licenses > 0 THEN 100 * coalesce(users, 0) / licenses END, NULL, NULL, NULL, NULL
        FROM totals LEFT JOIN users USING (account_id)""")


# --------------------------------------------------------------------------- health


def shown(value: object) -> str:
    """A rule value as reasons show it."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, list):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


class Rules:
    """Health rules as SQL over the view health_input (one row per account: metrics, roll-ups)."""

    def __init__(self, attributes: Sequence[str]) -> None:
        self.attributes = set(attributes)

    def value(self, metric: str) -> str:
        return f"attributes[{quoted(metric)}]" if metric in self.attributes else ident(metric)

    def holds(self, rule: Rule) -> str:
        """TRUE, FALSE, or NULL when left out."""
        x = self.value(rule.metric)
        if rule.op in ("is_empty", "is_not_empty"):
            return f"({x} IS {'' if rule.op == 'is_empty' else 'NOT '}NULL)"

        def literal(v: object) -> str:
            if rule.kind == "ordinal":
                return str(FREQUENCIES.index(v))
            if isinstance(v, str):
                return quoted(v)
            return f"CAST('{v!r}' AS DOUBLE)" if isinstance(v, float) else str(v)

        if rule.kind == "ordinal":
            x = "(CASE " + x + "".join(f" WHEN '{f}' THEN {i}" for i, f in enumerate(FREQUENCIES)) + " END)"
        if rule.op in (">=", ">", "<=", "<"):
            return f"({x} {rule.op} {literal(rule.value)})"
        targets = rule.value if isinstance(rule.value, list) else [rule.value]
        any_equal = "(" + " OR ".join(f"{x} = {literal(t)}" for t in targets) + ")"
        return any_equal if rule.op in ("==", "in") else f"(NOT {any_equal})"

    def shown_value(self, metric: str, kind: str) -> str:
        x = self.value(metric)
        text = f"CAST({x} AS VARCHAR)" if kind == "number" else f"'''' || replace({x}, '''', '''''') || ''''"
        return f"coalesce({text}, 'None')"

    def reason(self, prefix: str, metric: str, kind: str) -> str:
        """SQL for `<prefix><the account's value>)`: every reason ends with its value in parentheses."""
        return f"{quoted(prefix)} || {self.shown_value(metric, kind)} || ')'"

    def condition(self, rule: Rule) -> str:
        return rule.op if rule.op in ("is_empty", "is_not_empty") else f"{rule.op} {shown(rule.value)}"

    def profile_of(self, profiles: Sequence[Profile]) -> str:
        branches = " ".join(
            f"WHEN {' AND '.join(self.holds(r) for r in p.when) or 'TRUE'} THEN {quoted(p.name)}" for p in profiles
        )
        return f"CASE {branches} END"

    def scorecard(self, profile: Profile) -> str:
        columns, listed = [], []
        for side, label, rules in (("poor", "Poor", profile.poor), ("good", "Good", profile.good)):
            for i, rule in enumerate(rules):
                columns.append(f"{self.holds(rule)} AS {side}_{i}")
                reason = self.reason(f"{rule.metric} {self.condition(rule)} (value ", rule.metric, rule.kind)
                is_listed = f"(health = '{label}' AND {side}_{i}) OR (health = 'Average' AND NOT {side}_{i})"
                listed.append(f"CASE WHEN {is_listed} THEN {reason} END")
        poor = [f"poor_{i}" for i in range(len(profile.poor))]
        good = [f"good_{i}" for i in range(len(profile.good))]
        outcomes = "WHEN " + " AND ".join(f"{c} IS NULL" for c in poor + good) + " THEN 'No value'"
        if poor:
            outcomes += " WHEN " + " OR ".join(poor) + " THEN 'Poor'"
        if good:
            evaluated, failed = (
                " OR ".join(f"{c} IS NOT NULL" for c in good),
                " OR ".join(f"{c} IS FALSE" for c in good),
            )
            outcomes += f" WHEN ({evaluated}) AND NOT ({failed}) THEN 'Good'"
        reasons = "[" + ", ".join(listed) + "]"
        return f"""
            SELECT account_id, health, NULL::INTEGER AS health_score,
                MAP {{}}::MAP(VARCHAR, INTEGER) AS dimension_scores,
                list_filter({reasons}, lambda r: r IS NOT NULL) AS reasons
            FROM (SELECT *, CASE {outcomes} ELSE 'Average' END AS health
                  FROM (SELECT *, {", ".join(columns)} FROM health_input WHERE profile = {quoted(profile.name)}))
        """

    def dimensional(self, profile: Profile) -> str:
        scores, reasons, dimension_scores = [], [], []
        for d, dimension in enumerate(profile.dimensions):
            weights = integer_weights([m.weight for m in dimension.metrics])
            for m, metric in enumerate(dimension.metrics):
                poor, good, score = self.holds(metric.poor_rule), self.holds(metric.good_rule), f"s_{d}_{m}"
                scores.append(
                    f"CASE WHEN ({poor}) IS NULL AND ({good}) IS NULL THEN NULL "
                    f"WHEN {poor} THEN 0 WHEN {good} THEN 100 ELSE 60 END AS {score}"
                )
                label = f"{dimension.name}/{metric.metric}: "
                poor_reason = self.reason(
                    f"{label}Poor ({self.condition(metric.poor_rule)}, value ", metric.metric, metric.kind
                )
                good_reason = self.reason(
                    f"{label}Good ({self.condition(metric.good_rule)}, value ", metric.metric, metric.kind
                )
                average_reason = self.reason(f"{label}Average (value ", metric.metric, metric.kind)
                reasons.append(
                    f"CASE WHEN {poor} THEN {poor_reason} WHEN {good} THEN {good_reason} "
                    f"WHEN {score} IS NOT NULL THEN {average_reason} END"
                )
            scored = [(w, f"s_{d}_{m}") for m, w in enumerate(weights)]
            dimension_scores.append(f"{rounded_mean(scored)} AS dim_{d}")
        weights = integer_weights([dim.weight for dim in profile.dimensions])
        overall = rounded_mean([(w, f"dim_{d}") for d, w in enumerate(weights)])
        entries = ", ".join(
            f"{{'key': {quoted(dim.name)}, 'value': dim_{d}}}" for d, dim in enumerate(profile.dimensions)
        )
        bands = profile.bands
        return f"""
            SELECT account_id,
                CASE WHEN overall IS NULL THEN 'No value' WHEN overall < {bands.average_from} THEN 'Poor'
                     WHEN overall < {bands.good_from} THEN 'Average' ELSE 'Good' END AS health,
                overall AS health_score,
                map_from_entries(list_filter([{entries}], lambda e: e.value IS NOT NULL))::MAP(VARCHAR, INTEGER)
                    AS dimension_scores,
                reasons
            FROM (
                SELECT *, {overall} AS overall
                FROM (
                    SELECT *, {", ".join(dimension_scores)},
                        list_filter([{", ".join(reasons)}], lambda r: r IS NOT NULL) AS reasons
                    FROM (SELECT *, {", ".join(scores)} FROM health_input WHERE profile = {quoted(profile.name)})))
        """


def rounded_mean(weighted: Sequence[tuple[int, str]]) -> str:
    """SQL: the mean of the non-null score columns with their integer weights, rounded half up,
    exactly: (2 * sum(w * s) + sum(w)) // (2 * sum(w)); null when every score is null."""
    sums = " + ".join(f"coalesce({w}::HUGEINT * {column}, 0)" for w, column in weighted)
    total = " + ".join(f"CASE WHEN {column} IS NULL THEN 0 ELSE {w}::HUGEINT END" for w, column in weighted)
    return f"((2 * ({sums}) + ({total})) // nullif(2 * ({total}), 0))::INTEGER"


def integer_weights(weights: Sequence[float]) -> list[int]:
    """The weights as integers in the ratios of their decimals as written (0.1 is one tenth)."""
    exact = [Fraction(repr(w)) for w in weights]
    denominator = math.lcm(*(w.denominator for w in exact))
    return [int(w * denominator) for w in exact]


def health(con: duckdb.DuckDBPyConnection, config: PipelineConfig, day: date) -> None:
    """Every profile's health of D, then the descendants' health of every account with descendants."""
    d = f"DATE '{day.isoformat()}'"
    rules = Rules(list(config.crm.mapping.account.attributes))
    rollup_metrics = ", ".join(f"r.{c}" for c in ROLLUP_COLUMNS[1:])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE health_input AS
        SELECT *, {rules.profile_of(config.profiles)} AS profile
        FROM (SELECT m.*, {rollup_metrics} FROM day_metrics m
              LEFT JOIN account_rollups r ON r.date = {d} AND r.account_id = m.account_id)
        WHERE status_group IN ('Free', 'Paying')""")
    con.execute(f"DELETE FROM account_health WHERE date = {d}")
    for profile in config.profiles:
        query = rules.dimensional(profile) if profile.dimensions else rules.scorecard(profile)
        con.execute(f"""
            INSERT INTO account_health
            SELECT {d}, h.account_id, {quoted(profile.name)}, h.health, h.health_score, h.dimension_scores,
                h.reasons, previous.health
            FROM ({query}) h
            LEFT JOIN (SELECT account_id, arg_min(health, profile) AS health FROM account_health
                       WHERE date = {d} - 1 GROUP BY account_id) previous USING (account_id)""")
    share = config.rollups.subaccount_health
    weight = "greatest(coalesce(m.contract_value, 0), 0)" if share.by == "contract_value" else "1"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE descendant_health AS
        SELECT t.ancestor AS account_id,
            count(*) FILTER (h.health = 'Good') AS good, count(*) FILTER (h.health = 'Average') AS average,
            count(*) FILTER (h.health = 'Poor') AS poor,
            coalesce(sum({weight}) FILTER (h.health IN ('Good', 'Average', 'Poor')), 0) AS scored,
            coalesce(sum({weight}) FILTER (h.health = 'Good'), 0) AS good_weight,
            coalesce(sum({weight}) FILTER (h.health = 'Poor'), 0) AS poor_weight
        FROM subtrees t JOIN account_health h ON h.date = {d} AND h.account_id = t.member
        JOIN day_metrics m ON m.account_id = t.member
        WHERE t.member <> t.ancestor GROUP BY t.ancestor""")
    con.execute(f"""
        UPDATE account_rollups r SET descendants_good = coalesce(h.good, 0),
            descendants_average = coalesce(h.average, 0), descendants_poor = coalesce(h.poor, 0),
            subaccount_health = CASE WHEN coalesce(h.scored, 0) = 0 THEN NULL
                WHEN h.poor_weight / h.scored > CAST('{share.poor_share!r}' AS DOUBLE) THEN 'Poor'
                WHEN h.good_weight / h.scored >= CAST('{share.good_share!r}' AS DOUBLE) THEN 'Good' ELSE 'Average' END
        FROM (SELECT a.account_id, d.* EXCLUDE (account_id) FROM account_rollups a
              LEFT JOIN descendant_health d USING (account_id) WHERE a.date = {d}) h
        WHERE r.date = {d} AND r.account_id = h.account_id""")


# --------------------------------------------------------------------------- the day, the check


def connect(db: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(db), config={"memory_limit": memory_limit})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute(SCHEMA)
    return con


def run_day(con: duckdb.DuckDBPyConnection, config: PipelineConfig, day: date) -> None:
    """One day's work, in one transaction."""
    con.begin()
    load_accounts(con, config, day)
    ingest(con, config, day)
    aggregate(con, day)
    metrics(con, config, day)
    rollups(con, day)
    health(con, config, day)
    con.commit()


def ensure_metrics_table(con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> None:
    """account_metrics with the day's columns (built-in, account columns, custom metrics)."""
    custom = "".join(f", {ident(n)} DOUBLE" for n in config.metrics)
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS account_metrics (date DATE, account_id VARCHAR, name VARCHAR, parent_id VARCHAR,
            root_id VARCHAR, depth INTEGER, path VARCHAR[], account_type VARCHAR, product_key VARCHAR, status VARCHAR,
            status_group VARCHAR, create_date DATE, contract_value DOUBLE, renewal_date DATE, licenses DOUBLE,
            attributes MAP(VARCHAR, VARCHAR), snapshot_date DATE,
            active_users_1d BIGINT, active_users_7d BIGINT, active_users_14d BIGINT, active_users_30d BIGINT,
            events_14d BIGINT, events_30d BIGINT, active_days_14d BIGINT, active_days_30d BIGINT,
            days_since_active_30d INTEGER, modules_used_30d BIGINT, actions_used_30d BIGINT, usage_frequency VARCHAR,
            engagement_score INTEGER, license_utilization DOUBLE, account_age_days INTEGER, days_to_renewal INTEGER
            {custom})""")


def differ(column: str) -> str:
    """SQL: the yardstick's value (y) is not the pipeline's (p), compared as text (exact for
    doubles: their shortest round-trip form)."""
    return f"y.{ident(column)}::VARCHAR IS DISTINCT FROM p.{ident(column)}::VARCHAR"


def differences(con: duckdb.DuckDBPyConnection, warehouse: Path, config: PipelineConfig, day: date) -> list[str]:
    """Where the yardstick's metrics, roll-ups and health of `day` differ from the pipeline's."""
    con.execute(f"ATTACH '{warehouse}' AS pipeline (READ_ONLY)")
    d = f"DATE '{day.isoformat()}'"
    compared = (
        ("account_metrics", ("account_id",), (*ACCOUNT_COLUMNS, *BUILTIN_METRICS, *config.metrics)),
        ("account_rollups", ("account_id",), (*ROLLUP_COLUMNS, *SUBACCOUNT_COLUMNS)),
        (
            "account_health",
            ("account_id", "profile"),
            ("health", "health_score", "dimension_scores", "reasons", "previous_health"),
        ),
    )
    found = []
    for table, keys, columns in compared:
        on = " AND ".join(f"y.{k} = p.{k}" for k in keys)
        checks = ", ".join(f"count(*) FILTER (y.{keys[0]} = p.{keys[0]} AND {differ(c)})" for c in columns)
        [row] = con.execute(f"""
            SELECT count(*) FILTER (p.{keys[0]} IS NULL), count(*) FILTER (y.{keys[0]} IS NULL), count(*), {checks}
            FROM (SELECT * FROM main.{table} WHERE date = {d}) y
            FULL JOIN (SELECT * FROM pipeline.{table} WHERE date = {d}) p ON {on}""").fetchall()
        only_yardstick, only_pipeline, rows, *mismatches = row
        if only_yardstick or only_pipeline:
            found.append(f"{table}: {only_yardstick} rows only in the yardstick, {only_pipeline} only in the pipeline")
        for column, count in zip(columns, mismatches, strict=True):
            if count:
                [example] = con.execute(f"""
                    SELECT {", ".join(f"y.{k}" for k in keys)}, y.{ident(column)}::VARCHAR, p.{ident(column)}::VARCHAR
                    FROM (SELECT * FROM main.{table} WHERE date = {d}) y
                    JOIN (SELECT * FROM pipeline.{table} WHERE date = {d}) p ON {on}
                    WHERE {differ(column)} LIMIT 1""").fetchall()
                found.append(f"{table}.{column}: {count} of {rows} rows differ, e.g. {example}")
        if not rows:
            found.append(f"{table}: no rows for {day}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the pipeline's config file of the tenant")
    parser.add_argument("--db", type=Path, required=True, help="the yardstick's DuckDB file")
    parser.add_argument("--day", type=date.fromisoformat, help="the day to run (timed) or to check")
    parser.add_argument("--load-days", nargs=2, type=date.fromisoformat, metavar=("FIRST", "LAST"))
    parser.add_argument("--check", type=Path, metavar="WAREHOUSE", help="compare --day with the pipeline's warehouse")
    parser.add_argument("--memory-limit", default="800MB", help="DuckDB's memory_limit (the pipeline's: 800MB)")
    args = parser.parse_args()
    config = load_config(args.config)
    con = connect(args.db, args.memory_limit)
    ensure_metrics_table(con, config)
    if args.load_days:
        first, last = args.load_days
        for offset in range((last - first).days + 1):
            run_day(con, config, first + timedelta(days=offset))
    if args.check:
        if args.day is None:
            sys.exit("--check needs --day")
        found = differences(con, args.check, config, args.day)
        print("\n".join(found) or f"yardstick and pipeline agree on {args.day}", flush=True)
        sys.exit(1 if found else 0)
    if args.day:
        started = time.monotonic()
        run_day(con, config, args.day)
        con.execute("CHECKPOINT")
        print(f"yardstick {args.day}: {time.monotonic() - started:.2f}s", flush=True)
    con.close()


if __name__ == "__main__":
    main()
