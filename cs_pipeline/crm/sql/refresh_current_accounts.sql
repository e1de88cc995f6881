-- `accounts` and `hierarchy_issues` show the newest CRM snapshot; an ID that appears only in
-- usage events joins as an account of type `unknown`
-- (docs/data-model.md#account-hierarchy-and-product-accounts). Variables: run_id.
CREATE OR REPLACE TEMP TABLE newest_snapshot AS
SELECT max(snapshot_date) AS snapshot_date FROM account_snapshots;

DELETE FROM accounts;
INSERT INTO accounts
SELECT * EXCLUDE (snapshot_date, run_id), getvariable('run_id')
FROM account_snapshots
WHERE snapshot_date = (SELECT snapshot_date FROM newest_snapshot);

INSERT INTO accounts
SELECT account_id, NULL, NULL, account_id, 0, [account_id], 'unknown', NULL, NULL, unknown_status_group(),
    NULL, NULL, NULL, NULL, NULL, getvariable('run_id')
FROM (SELECT DISTINCT account_id FROM usage_account_days)
WHERE account_id NOT IN (SELECT account_id FROM accounts);

DELETE FROM hierarchy_issues;
INSERT INTO hierarchy_issues
SELECT account_id, issue, detail, getvariable('run_id')
FROM hierarchy_issue_snapshots
WHERE snapshot_date = (SELECT snapshot_date FROM newest_snapshot);
