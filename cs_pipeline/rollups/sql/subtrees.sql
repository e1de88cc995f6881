-- The hierarchy of day `as_of`: that of the CRM snapshot account_metrics used for as_of.
-- Variables: as_of.
-- (ancestor, member) for every account of the day and every ID on its path, itself included.
CREATE OR REPLACE TEMP TABLE rollup_subtrees AS
SELECT ancestor, s.account_id AS member
FROM account_snapshots s, unnest(s.path) AS p(ancestor)
WHERE s.snapshot_date = (SELECT any_value(snapshot_date) FROM account_metrics WHERE date = getvariable('as_of'));
