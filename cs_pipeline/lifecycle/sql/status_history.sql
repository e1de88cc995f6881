-- status_history for snapshot date `partition_date` (the account_versions in force on it), and
-- status_changes against the previous snapshot date. Materialising a date out of order
-- changes the next snapshot date's predecessor, so that date's changes are redone too.
-- Variables: partition_date, run_id.
DELETE FROM status_history WHERE date = getvariable('partition_date');
INSERT INTO status_history
SELECT getvariable('partition_date'), account_id, account_type, status, status_group, getvariable('run_id')
FROM account_versions
WHERE in_force(valid_from, valid_to, getvariable('partition_date'))
  AND getvariable('partition_date') IN (SELECT snapshot_date FROM snapshot_dates WHERE asset = 'accounts');

CREATE OR REPLACE TEMP TABLE change_dates AS
SELECT date, (SELECT max(earlier.date) FROM status_history earlier WHERE earlier.date < d.date) AS previous_date
FROM (
    SELECT getvariable('partition_date') AS date
    UNION
    SELECT min(date) FROM status_history WHERE date > getvariable('partition_date')
) d
WHERE date IS NOT NULL;

DELETE FROM status_changes WHERE date IN (SELECT date FROM change_dates);
INSERT INTO status_changes
SELECT c.date, cur.account_id, cur.account_type,
    CASE
        WHEN prev.account_id IS NULL THEN 'new'
        WHEN cur.status_group = 'Canceled' AND prev.status_group <> 'Canceled' THEN 'churn'
        WHEN prev.status_group = 'Canceled' AND active_status_group(cur.status_group) THEN 'reactivation'
        WHEN prev.status_group = 'Free' AND cur.status_group = 'Paying' THEN 'conversion'
        WHEN prev.status_group = 'Paying' AND cur.status_group = 'Free' THEN 'downgrade'
        -- a status of the catalog for another of its group; a change within Unknown (a missing
        -- or uncatalogued status for another) is no plan of the catalog: unclassified
        WHEN prev.status_group = cur.status_group AND cur.status_group <> 'Unknown' THEN 'plan_change'
        ELSE 'unclassified'
    END,
    prev.date, prev.status, prev.status_group, cur.status, cur.status_group, getvariable('run_id')
FROM change_dates c
JOIN status_history cur ON cur.date = c.date
LEFT JOIN status_history prev ON prev.date = c.previous_date AND prev.account_id = cur.account_id
WHERE prev.account_id IS NULL OR cur.status IS DISTINCT FROM prev.status;
