-- The hierarchy of day `as_of`: that of the CRM snapshot account_metrics used for as_of.
-- Variables: as_of.
-- (ancestor, member) for every account of the day and every ID on its path, itself included.
CREATE OR REPLACE TEMP TABLE rollup_subtrees AS
SELECT ancestor, s.account_id AS member
FROM account_versions s, unnest(s.path) AS p(ancestor)
WHERE in_force(
    s.valid_from, s.valid_to, (SELECT any_value(snapshot_date) FROM account_metrics WHERE date = getvariable('as_of'))
);
