-- Descendant health counts and subaccount_health of day `as_of` (docs/health.md#sub-account-health), into the day's
-- account_rollups rows, from every descendant's health of that day (any profile). Shares are
-- of the scored descendants (Good, Average or Poor), by count or by contract value (a null or
-- non-positive contract value weighs nothing). Needs rollup_subtrees (subtrees.sql).
-- Variables: as_of, run_id, by_contract_value, poor_share, good_share.
CREATE OR REPLACE TEMP TABLE rollup_descendant_health AS
SELECT t.ancestor AS account_id,
    count(*) FILTER (h.health = 'Good') AS good,
    count(*) FILTER (h.health = 'Average') AS average,
    count(*) FILTER (h.health = 'Poor') AS poor,
    coalesce(sum(w.weight) FILTER (h.health IN ('Good', 'Average', 'Poor')), 0) AS scored_weight,
    coalesce(sum(w.weight) FILTER (h.health = 'Good'), 0) AS good_weight,
    coalesce(sum(w.weight) FILTER (h.health = 'Poor'), 0) AS poor_weight
FROM rollup_subtrees t
JOIN account_health h ON h.date = getvariable('as_of') AND h.account_id = t.member
JOIN (
    SELECT account_id,
        CASE WHEN getvariable('by_contract_value') THEN greatest(coalesce(contract_value, 0), 0) ELSE 1 END AS weight
    FROM account_metrics WHERE date = getvariable('as_of')
) w ON w.account_id = t.member
WHERE t.member <> t.ancestor
GROUP BY t.ancestor;

-- The day's rows rebuilt (delete-then-insert: cheaper in DuckDB than updating them in place).
CREATE OR REPLACE TEMP TABLE rollup_day AS
SELECT * FROM account_rollups WHERE date = getvariable('as_of');
DELETE FROM account_rollups WHERE date = getvariable('as_of');
INSERT INTO account_rollups
SELECT r.* REPLACE (
    coalesce(d.good, 0) AS descendants_good,
    coalesce(d.average, 0) AS descendants_average,
    coalesce(d.poor, 0) AS descendants_poor,
    CASE
        WHEN coalesce(d.scored_weight, 0) = 0 THEN NULL
        WHEN d.poor_weight / d.scored_weight > getvariable('poor_share') THEN 'Poor'
        WHEN d.good_weight / d.scored_weight >= getvariable('good_share') THEN 'Good'
        ELSE 'Average'
    END AS subaccount_health,
    getvariable('run_id') AS run_id
)
FROM rollup_day r
LEFT JOIN rollup_descendant_health d USING (account_id);
