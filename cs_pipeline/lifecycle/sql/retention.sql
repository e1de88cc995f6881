-- Retention for day `as_of` (docs/lifecycle.md#retention): the events of every account of group Free on as_of
-- with no event in its last `inactive_days` days (of the events known at the end of as_of)
-- are purged, those dated up to as_of, with their later copies and daily aggregates; each
-- purge is logged in retention_log. A re-run finds nothing more to purge and logs nothing.
-- Variables: as_of, inactive_days, run_id.
CREATE OR REPLACE TEMP TABLE retention_candidates AS
SELECT a.account_id
FROM usage_account_days a
WHERE a.partition_date <= getvariable('as_of') AND a.event_date <= getvariable('as_of')
  AND a.account_id IN (
      SELECT account_id FROM account_metrics WHERE date = getvariable('as_of') AND status_group = 'Free')
GROUP BY a.account_id
HAVING max(a.event_date) <= getvariable('as_of') - getvariable('inactive_days');

-- the events purged, by their keys (cs_pipeline/event_keys.py)
CREATE OR REPLACE TEMP TABLE retention_purged_keys AS
SELECT account_id, partition_date, hash(event_id) AS event_key
FROM usage_events
WHERE event_date <= getvariable('as_of') AND account_id IN (SELECT account_id FROM retention_candidates);

-- per delivery day too: the published layer rewrites the usage_events partitions purged
CREATE OR REPLACE TEMP TABLE retention_purged_partitions AS
SELECT account_id, partition_date, count(*) AS rows FROM retention_purged_keys GROUP BY account_id, partition_date;

CREATE OR REPLACE TEMP TABLE retention_purged AS
SELECT account_id, sum(rows)::BIGINT AS rows FROM retention_purged_partitions GROUP BY account_id;

DELETE FROM usage_events
WHERE event_date <= getvariable('as_of') AND account_id IN (SELECT account_id FROM retention_purged);
-- one key row out per purged event: a key's rows in a delivery day are interchangeable, and two
-- different event_ids sharing a key keep one row each
DELETE FROM usage_event_keys WHERE rowid IN (
    SELECT key_rowid FROM (
        SELECT k.rowid AS key_rowid, p.events,
            row_number() OVER (PARTITION BY k.partition_date, k.event_key) AS nth
        FROM usage_event_keys k
        JOIN (SELECT partition_date, event_key, count(*) AS events FROM retention_purged_keys GROUP BY ALL) p
            USING (partition_date, event_key)
    )
    WHERE nth <= events
);
DELETE FROM usage_event_copies
WHERE event_date <= getvariable('as_of') AND account_id IN (SELECT account_id FROM retention_candidates);
DELETE FROM usage_account_days
WHERE event_date <= getvariable('as_of') AND account_id IN (SELECT account_id FROM retention_candidates);
-- the users asset counts these accounts' users' days again (crm/sql/refresh_users.sql)
INSERT INTO user_day_changes
SELECT account_id, user_id, NULL, NULL, min(event_date), max(event_date)
FROM usage_user_days
WHERE event_date <= getvariable('as_of') AND account_id IN (SELECT account_id FROM retention_candidates)
GROUP BY account_id, user_id;
DELETE FROM usage_user_days
WHERE event_date <= getvariable('as_of') AND account_id IN (SELECT account_id FROM retention_candidates);

INSERT INTO retention_log
SELECT account_id, getvariable('as_of'), getvariable('as_of'), rows, getvariable('run_id')
FROM retention_purged;
