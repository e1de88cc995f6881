-- Store the resolved account dimension and its issues (registered frames resolved_accounts,
-- resolved_issues) for partition_date. Variables: partition_date, run_id.
DELETE FROM account_snapshots WHERE snapshot_date = getvariable('partition_date');
DELETE FROM hierarchy_issue_snapshots WHERE snapshot_date = getvariable('partition_date');

INSERT INTO account_snapshots
SELECT getvariable('partition_date'), * REPLACE (map_from_entries(attributes) AS attributes), getvariable('run_id')
FROM resolved_accounts;

INSERT INTO hierarchy_issue_snapshots
SELECT getvariable('partition_date'), account_id, issue, detail, getvariable('run_id')
FROM resolved_issues;
