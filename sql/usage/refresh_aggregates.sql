-- Rebuild the daily aggregates (usage_account_days, usage_user_days) of every delivery day
-- in touched_partitions from the events now stored for it. Variables: run_id.
DELETE FROM usage_account_days WHERE partition_date IN (SELECT partition_date FROM touched_partitions);
DELETE FROM usage_user_days WHERE partition_date IN (SELECT partition_date FROM touched_partitions);

INSERT INTO usage_account_days
SELECT partition_date, event_date, account_id, sum(events), list_distinct(flatten(list(modules))),
    map_from_entries(list({'key': action, 'value': events})), getvariable('run_id')
FROM (
    SELECT partition_date, event_date, account_id, action, count(*) AS events,
        coalesce(list(DISTINCT module) FILTER (module IS NOT NULL), []) AS modules
    FROM usage_events
    WHERE partition_date IN (SELECT partition_date FROM touched_partitions)
    GROUP BY partition_date, event_date, account_id, action
)
GROUP BY partition_date, event_date, account_id;

INSERT INTO usage_user_days
SELECT partition_date, event_date, account_id, user_id, count(*),
    coalesce(list(DISTINCT module) FILTER (module IS NOT NULL), []), getvariable('run_id')
FROM usage_events
WHERE partition_date IN (SELECT partition_date FROM touched_partitions) AND user_id IS NOT NULL
GROUP BY partition_date, event_date, account_id, user_id;
