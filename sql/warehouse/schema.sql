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
