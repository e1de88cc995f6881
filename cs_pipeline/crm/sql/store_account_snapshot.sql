-- The resolved account dimension and its issues (registered frames resolved_accounts,
-- resolved_issues) as rows of the versioned tables, which crm/versions.py stores as the
-- snapshot of the partition date (the attributes as their entries: crm/versions.py makes maps
-- of them only in the rows it writes).
CREATE OR REPLACE TEMP VIEW incoming_account_versions AS SELECT * FROM resolved_accounts;
CREATE OR REPLACE TEMP VIEW incoming_hierarchy_issue_versions AS
SELECT account_id, issue, detail FROM resolved_issues;
