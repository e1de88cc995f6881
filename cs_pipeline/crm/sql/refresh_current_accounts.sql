-- `accounts` and `hierarchy_issues` show the newest CRM snapshot (the versions still open); an
-- ID that appears only in usage events joins as an account of type `unknown`
-- (docs/data-model.md#account-hierarchy-and-product-accounts). Variables: run_id.
DELETE FROM accounts;
INSERT INTO accounts
SELECT * EXCLUDE (valid_from, valid_to, occurrence, run_id), getvariable('run_id')
FROM account_versions
WHERE valid_to IS NULL;

INSERT INTO accounts
SELECT account_id, NULL, NULL, account_id, 0, [account_id], 'unknown', NULL, NULL, unknown_status_group(),
    NULL, NULL, NULL, NULL, NULL, getvariable('run_id')
FROM (SELECT DISTINCT account_id FROM usage_account_days)
WHERE account_id NOT IN (SELECT account_id FROM accounts);

DELETE FROM hierarchy_issues;
INSERT INTO hierarchy_issues
SELECT account_id, issue, detail, getvariable('run_id')
FROM hierarchy_issue_versions
WHERE valid_to IS NULL;
