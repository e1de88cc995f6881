-- Roll-up metrics of day `as_of` for every account with descendants, over its subtree in the
-- hierarchy of the CRM snapshot account_metrics used for as_of (docs/metrics.md#roll-up-metrics). Replaces the
-- day's rows. Needs rollup_subtrees (subtrees.sql) and rollup_window_users, the users of window 30
-- that account_metrics just built (metrics/window_users.py, the metrics domain's contract).
-- Variables: as_of, run_id.

CREATE OR REPLACE TEMP TABLE rollup_parents AS
SELECT ancestor AS account_id, count(*) - 1 AS descendants
FROM rollup_subtrees GROUP BY ancestor HAVING count(*) > 1;

-- A user active in several accounts of one subtree counts once.
CREATE OR REPLACE TEMP TABLE rollup_users AS
SELECT t.ancestor AS account_id, count(DISTINCT u.user_id) AS active_users
FROM rollup_window_users u
JOIN rollup_subtrees t ON t.member = u.account_id
WHERE t.ancestor IN (SELECT account_id FROM rollup_parents)
GROUP BY t.ancestor;

DELETE FROM account_rollups WHERE date = getvariable('as_of');
INSERT INTO account_rollups
SELECT getvariable('as_of'), p.account_id, p.descendants, totals.events, coalesce(u.active_users, 0),
    totals.licenses, totals.contract_value,
    CASE WHEN totals.licenses > 0 THEN 100 * coalesce(u.active_users, 0) / totals.licenses END,
    NULL, NULL, NULL, NULL, getvariable('run_id')
FROM rollup_parents p
JOIN (
    SELECT t.ancestor AS account_id, sum(m.events_30d) AS events, sum(m.licenses) AS licenses,
        sum(m.contract_value) AS contract_value
    FROM rollup_subtrees t
    JOIN account_metrics m ON m.date = getvariable('as_of') AND m.account_id = t.member
    GROUP BY t.ancestor
) totals USING (account_id)
LEFT JOIN rollup_users u USING (account_id);
