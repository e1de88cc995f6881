-- Warehouse schema. Every statement is idempotent: it runs each time a process first
-- connects. Public tables (SPEC section 6) keep their documented names and types; the
-- internal ones (crm_*_raw, account_snapshots, usage_event_copies, usage_vocabulary) hold
-- the per-day state the public tables are derived from.

-- CRM records as the source held them on snapshot_date, mapped to canonical names, text as given.
CREATE TABLE IF NOT EXISTS crm_accounts_raw (
    snapshot_date DATE NOT NULL, salesforce_id VARCHAR, account_id VARCHAR, name VARCHAR,
    parent_salesforce_id VARCHAR, status VARCHAR, create_date VARCHAR, contract_value VARCHAR,
    renewal_date VARCHAR, licenses VARCHAR, attributes MAP(VARCHAR, VARCHAR),
    system_modstamp VARCHAR, run_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS crm_assets_raw (
    snapshot_date DATE NOT NULL, salesforce_id VARCHAR, account_salesforce_id VARCHAR,
    product_code VARCHAR, product_name VARCHAR, status VARCHAR, licenses VARCHAR,
    contract_value VARCHAR, create_date VARCHAR, system_modstamp VARCHAR, run_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS crm_contacts_raw (
    snapshot_date DATE NOT NULL, salesforce_id VARCHAR, account_salesforce_id VARCHAR,
    user_id VARCHAR, name VARCHAR, system_modstamp VARCHAR, run_id VARCHAR NOT NULL);

-- The resolved account dimension of every snapshot date; `accounts` is the newest one.
CREATE TABLE IF NOT EXISTS account_snapshots (
    snapshot_date DATE NOT NULL, account_id VARCHAR NOT NULL, name VARCHAR, parent_id VARCHAR,
    root_id VARCHAR NOT NULL, depth INTEGER NOT NULL, path VARCHAR[] NOT NULL,
    account_type VARCHAR NOT NULL, product_key VARCHAR, status VARCHAR, status_group VARCHAR NOT NULL,
    create_date DATE, contract_value DOUBLE, renewal_date DATE, licenses DOUBLE,
    attributes MAP(VARCHAR, VARCHAR), run_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS hierarchy_issue_snapshots (
    snapshot_date DATE NOT NULL, account_id VARCHAR, issue VARCHAR NOT NULL, detail VARCHAR,
    run_id VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS accounts (
    account_id VARCHAR NOT NULL, name VARCHAR, parent_id VARCHAR, root_id VARCHAR NOT NULL,
    depth INTEGER NOT NULL, path VARCHAR[] NOT NULL, account_type VARCHAR NOT NULL,
    product_key VARCHAR, status VARCHAR, status_group VARCHAR NOT NULL, create_date DATE,
    contract_value DOUBLE, renewal_date DATE, licenses DOUBLE, attributes MAP(VARCHAR, VARCHAR),
    run_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS hierarchy_issues (
    account_id VARCHAR, issue VARCHAR NOT NULL, detail VARCHAR, run_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    account_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, name VARCHAR, first_seen DATE,
    last_seen DATE, run_id VARCHAR NOT NULL);

-- source_row (1-based data row within source_file) is the delivery order's last tie-break
-- and lets an auditor find the exact input line.
CREATE TABLE IF NOT EXISTS usage_events (
    event_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, event_date DATE NOT NULL,
    account_id VARCHAR NOT NULL, user_id VARCHAR, module VARCHAR, action VARCHAR NOT NULL,
    partition_date DATE NOT NULL, source_file VARCHAR NOT NULL, source_row BIGINT NOT NULL,
    run_id VARCHAR NOT NULL);
-- Later deliveries of a stored event_id: kept so that re-delivering or re-materialising the
-- earlier day can hand the event back to the next copy in delivery order.
CREATE TABLE IF NOT EXISTS usage_event_copies AS SELECT * FROM usage_events LIMIT 0;
CREATE TABLE IF NOT EXISTS rejected_events (
    partition_date DATE NOT NULL, source_file VARCHAR NOT NULL, source_row BIGINT, reason VARCHAR NOT NULL,
    raw JSON, run_id VARCHAR NOT NULL);
-- Distinct modules and actions each delivery day brought, with the earliest ts seen: the
-- per-tenant limits admit the first ones by (first delivery day, ts).
CREATE TABLE IF NOT EXISTS usage_vocabulary (
    partition_date DATE NOT NULL, kind VARCHAR NOT NULL, value VARCHAR NOT NULL,
    first_ts TIMESTAMPTZ NOT NULL);

-- Daily aggregates of usage_events, per delivery day (partition_date) and UTC event day, kept
-- by the usage_events asset in the same transaction: metrics for D read these instead of
-- 30 days of raw events. Per account and day (events without a user included):
CREATE TABLE IF NOT EXISTS usage_account_days (
    partition_date DATE NOT NULL, event_date DATE NOT NULL, account_id VARCHAR NOT NULL,
    events BIGINT NOT NULL, modules VARCHAR[] NOT NULL, action_events MAP(VARCHAR, BIGINT) NOT NULL,
    run_id VARCHAR NOT NULL);
-- Per account, user (non-null) and day, with the modules the user touched:
CREATE TABLE IF NOT EXISTS usage_user_days (
    partition_date DATE NOT NULL, event_date DATE NOT NULL, account_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, events BIGINT NOT NULL, modules VARCHAR[] NOT NULL, run_id VARCHAR NOT NULL);

-- Usage metrics per day and account (SPEC 4.2), with the account columns rules may use, so
-- a row holds every input of that day's health. Custom metrics are added as DOUBLE columns
-- when configured (ALTER TABLE ... ADD COLUMN) and stay when removed from the config.
CREATE TABLE IF NOT EXISTS account_metrics (
    date DATE NOT NULL, account_id VARCHAR NOT NULL, snapshot_date DATE, account_type VARCHAR NOT NULL,
    status VARCHAR, status_group VARCHAR NOT NULL, create_date DATE, renewal_date DATE, licenses DOUBLE,
    contract_value DOUBLE, attributes MAP(VARCHAR, VARCHAR),
    active_users_1d BIGINT NOT NULL, active_users_7d BIGINT NOT NULL, active_users_14d BIGINT NOT NULL,
    active_users_30d BIGINT NOT NULL, events_14d BIGINT NOT NULL, events_30d BIGINT NOT NULL,
    active_days_14d BIGINT NOT NULL, active_days_30d BIGINT NOT NULL, modules_used_30d BIGINT NOT NULL,
    actions_used_30d BIGINT NOT NULL, usage_frequency VARCHAR NOT NULL, engagement_score INTEGER,
    license_utilization DOUBLE, account_age_days INTEGER, days_to_renewal INTEGER, run_id VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS account_health (
    date DATE NOT NULL, account_id VARCHAR NOT NULL, profile VARCHAR NOT NULL, health VARCHAR NOT NULL,
    health_score INTEGER, dimension_scores MAP(VARCHAR, INTEGER) NOT NULL, reasons VARCHAR[] NOT NULL,
    previous_health VARCHAR, run_id VARCHAR NOT NULL);

-- Salesforce extraction (crm.source: salesforce): one bookmark per mirrored object, moved in
-- the transaction that updates its mirror table (salesforce_account, ...). fields is the
-- field list the mirror holds: another list means a full refresh.
CREATE TABLE IF NOT EXISTS salesforce_sync (
    object VARCHAR NOT NULL, fields VARCHAR[] NOT NULL, bookmark TIMESTAMPTZ, synced_at TIMESTAMPTZ NOT NULL,
    mode VARCHAR NOT NULL, run_id VARCHAR NOT NULL);

-- Status of every account of each CRM snapshot date, and the changes from the previous
-- snapshot date (SPEC 4.4). kind: new, conversion, churn, reactivation, downgrade,
-- plan_change, unclassified (to or from a missing or uncatalogued status).
CREATE TABLE IF NOT EXISTS status_history (
    date DATE NOT NULL, account_id VARCHAR NOT NULL, account_type VARCHAR NOT NULL, status VARCHAR,
    status_group VARCHAR NOT NULL, run_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS status_changes (
    date DATE NOT NULL, account_id VARCHAR NOT NULL, account_type VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    previous_date DATE, previous_status VARCHAR, previous_status_group VARCHAR, status VARCHAR,
    status_group VARCHAR NOT NULL, run_id VARCHAR NOT NULL);

-- Roll-ups over each subtree (the account and all its descendants) of every account with
-- descendants (SPEC 4.4). The roll-up metrics are written before health (rules may use
-- them); the descendant health counts and subaccount_health after it, null until then.
CREATE TABLE IF NOT EXISTS account_rollups (
    date DATE NOT NULL, account_id VARCHAR NOT NULL, descendants BIGINT NOT NULL,
    rollup_events_30d BIGINT NOT NULL, rollup_active_users_30d BIGINT NOT NULL, rollup_licenses DOUBLE,
    rollup_contract_value DOUBLE, rollup_license_utilization DOUBLE, descendants_good BIGINT,
    descendants_average BIGINT, descendants_poor BIGINT, subaccount_health VARCHAR, run_id VARCHAR NOT NULL);

-- Retention (SPEC 4.4): one row per purge of an inactive Free account's events. Deliveries
-- ingested later skip the account's events dated on or before purged_through.
CREATE TABLE IF NOT EXISTS retention_log (
    account_id VARCHAR NOT NULL, purged_on DATE NOT NULL, purged_through DATE NOT NULL, rows BIGINT NOT NULL,
    run_id VARCHAR NOT NULL);

-- The partitions of the published query layer (cs_pipeline/publish.py) that changed since
-- they were last published: each writer inserts the partitions it changes in the same
-- transaction as its writes; WarehouseResource.connection publishes them after each step
-- and then deletes the rows. partition is the hive path ('date=2025-11-01/profile=default',
-- '' for an unpartitioned table).
CREATE TABLE IF NOT EXISTS publish_queue (table_name VARCHAR NOT NULL, partition VARCHAR NOT NULL);
