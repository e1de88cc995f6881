-- The accounts that get a metrics row for `as_of` (docs/metrics.md#which-accounts-get-a-row): every account of the CRM
-- snapshot in force (the newest one taken on or before as_of, else the oldest one), product
-- accounts included, plus every unknown account ID delivered by as_of. Also the views a
-- custom `sql` metric may read: metric_accounts and metric_events. Variables: as_of.
CREATE OR REPLACE TEMP TABLE metric_snapshot AS
SELECT snapshot_in_force('accounts', getvariable('as_of')) AS snapshot_date;

CREATE OR REPLACE TEMP TABLE metric_accounts AS
SELECT (SELECT snapshot_date FROM metric_snapshot) AS snapshot_date,
    * EXCLUDE (valid_from, valid_to, occurrence, run_id)
FROM account_versions
WHERE in_force(valid_from, valid_to, (SELECT snapshot_date FROM metric_snapshot));

INSERT INTO metric_accounts BY NAME
SELECT account_id, account_id AS root_id, 0 AS depth, [account_id] AS path, 'unknown' AS account_type,
    unknown_status_group() AS status_group
FROM (
    SELECT DISTINCT account_id FROM usage_account_days WHERE partition_date <= getvariable('as_of')
) delivered
WHERE account_id NOT IN (SELECT account_id FROM metric_accounts);

CREATE OR REPLACE TEMP VIEW metric_events AS
SELECT event_id, ts, event_date, account_id, user_id, module, action
FROM usage_events
WHERE partition_date <= getvariable('as_of');
