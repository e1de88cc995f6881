-- `accounts` and `hierarchy_issues` show the newest CRM snapshot (the versions still open); an
-- ID that appears only in usage events joins as an account of type `unknown`
-- (docs/data-model.md#account-hierarchy-and-product-accounts). Variables: run_id. Python fills
-- in {differs} (a row of accounts `a` against its row of accounts_now `n`) from the registry.
CREATE OR REPLACE TEMP TABLE accounts_unknown AS
SELECT account_id, NULL, NULL, account_id, 0, [account_id], 'unknown', NULL, NULL, unknown_status_group(),
    NULL, NULL, NULL, NULL, NULL
FROM (SELECT DISTINCT account_id FROM usage_account_days)
WHERE account_id NOT IN (SELECT account_id FROM account_versions WHERE valid_to IS NULL);

-- what accounts shows now (a view: copying the open versions cost more than reading them twice)
CREATE OR REPLACE TEMP VIEW accounts_now AS
SELECT * EXCLUDE (valid_from, valid_to, occurrence, run_id) FROM account_versions WHERE valid_to IS NULL
UNION ALL SELECT * FROM accounts_unknown;

-- Only the accounts whose row came, went or changed are written again (account_id is the
-- dimension's key: one row each), then every row takes the run's run_id, as a rewrite of the
-- whole table would give it (writing every row costs 25 times setting one column of them).
-- The full join keeps each changed account's row now (none when it went), so that accounts_now
-- is read once.
CREATE OR REPLACE TEMP TABLE accounts_changed AS
SELECT coalesce(a.account_id, n.account_id) AS changed_id, n.*
FROM accounts a
FULL JOIN accounts_now n ON n.account_id = a.account_id
WHERE a.account_id IS NULL OR n.account_id IS NULL OR {differs};

DELETE FROM accounts WHERE account_id IN (SELECT changed_id FROM accounts_changed);
INSERT INTO accounts
SELECT * EXCLUDE (changed_id), getvariable('run_id') FROM accounts_changed WHERE account_id IS NOT NULL;
UPDATE accounts SET run_id = getvariable('run_id') WHERE run_id IS DISTINCT FROM getvariable('run_id');

DELETE FROM hierarchy_issues;
INSERT INTO hierarchy_issues
SELECT account_id, issue, detail, getvariable('run_id')
FROM hierarchy_issue_versions
WHERE valid_to IS NULL;
