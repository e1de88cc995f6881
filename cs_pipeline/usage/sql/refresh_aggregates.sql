-- Rebuild the daily aggregates (usage_account_days, usage_user_days) of every delivery day
-- in touched_partitions from the events now stored for it. Variables: run_id.
-- An account-day's modules and actions are bit sets (docs/data-model.md#bit-sets): a value new
-- to usage_value_ids gets the next number there first. A user-day's modules come from a GROUP
-- BY on the module itself, then a plain list() per day: several times cheaper than
-- list(DISTINCT ...) on millions of rows. Lists and maps are sorted, and a set is as long as its
-- own highest number needs, so a re-run writes identical rows. The event days each account and
-- user gains or loses go to user_day_changes, from which the users asset keeps users up to date.
CREATE OR REPLACE TEMP TABLE user_days_before AS
SELECT partition_date, event_date, account_id, user_id
FROM usage_user_days
WHERE partition_date IN (SELECT partition_date FROM touched_partitions);

DELETE FROM usage_account_days WHERE partition_date IN (SELECT partition_date FROM touched_partitions);
DELETE FROM usage_user_days WHERE partition_date IN (SELECT partition_date FROM touched_partitions);

CREATE OR REPLACE TEMP VIEW touched_events AS
SELECT partition_date, event_date, account_id, user_id, module, action
FROM usage_events
WHERE partition_date IN (SELECT partition_date FROM touched_partitions);

CREATE OR REPLACE TEMP TABLE touched_action_counts AS
SELECT partition_date, event_date, account_id, action, count(*) AS events
FROM touched_events
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE touched_modules AS
SELECT DISTINCT partition_date, event_date, account_id, module FROM touched_events WHERE module IS NOT NULL;

-- numbers for the values no aggregate held before, after the highest of their kind, by name
INSERT INTO usage_value_ids
SELECT kind, value,
    (SELECT coalesce(max(id), 0) FROM usage_value_ids i WHERE i.kind = n.kind)
        + row_number() OVER (PARTITION BY kind ORDER BY value)
FROM (
    SELECT DISTINCT 'action' AS kind, action AS value FROM touched_action_counts
    UNION SELECT DISTINCT 'module', module FROM touched_modules
) n
ANTI JOIN usage_value_ids USING (kind, value);

-- bit n from the right is value n; bit_set() needs the length of a set holding every number
SET VARIABLE action_bits_length = (SELECT bit_set_length(max(id)) FROM usage_value_ids WHERE kind = 'action');
SET VARIABLE module_bits_length = (SELECT bit_set_length(max(id)) FROM usage_value_ids WHERE kind = 'module');

INSERT INTO usage_account_days BY NAME
WITH account_actions AS (
    SELECT partition_date, event_date, account_id, sum(events) AS events,
        map(list(action ORDER BY action), list(events ORDER BY action)) AS action_events,
        bit_set(id, getvariable('action_bits_length')) AS action_bits
    FROM touched_action_counts
    JOIN usage_value_ids ON kind = 'action' AND value = action
    GROUP BY ALL
),
account_modules AS (
    SELECT partition_date, event_date, account_id,
        bit_set(id, getvariable('module_bits_length')) AS module_bits
    FROM touched_modules
    JOIN usage_value_ids ON kind = 'module' AND value = module
    GROUP BY ALL
)
SELECT partition_date, event_date, account_id, events, action_events, action_bits, module_bits,
    getvariable('run_id') AS run_id
FROM account_actions LEFT JOIN account_modules USING (partition_date, event_date, account_id);

INSERT INTO usage_user_days
SELECT partition_date, event_date, account_id, user_id, sum(events),
    coalesce(list(module ORDER BY module) FILTER (module IS NOT NULL), []), getvariable('run_id')
FROM (
    SELECT partition_date, event_date, account_id, user_id, module, count(*) AS events
    FROM touched_events
    WHERE user_id IS NOT NULL
    GROUP BY ALL
)
GROUP BY partition_date, event_date, account_id, user_id;

CREATE OR REPLACE TEMP TABLE user_days_after AS
SELECT partition_date, event_date, account_id, user_id
FROM usage_user_days
WHERE partition_date IN (SELECT partition_date FROM touched_partitions);

INSERT INTO user_day_changes
SELECT account_id, user_id, min(event_date) FILTER (added), max(event_date) FILTER (added),
    min(event_date) FILTER (NOT added), max(event_date) FILTER (NOT added)
FROM (
    SELECT *, true AS added FROM (SELECT * FROM user_days_after EXCEPT SELECT * FROM user_days_before)
    UNION ALL
    SELECT *, false AS added FROM (SELECT * FROM user_days_before EXCEPT SELECT * FROM user_days_after)
)
GROUP BY account_id, user_id;

DROP VIEW touched_events;
DROP TABLE touched_action_counts;
DROP TABLE touched_modules;
DROP TABLE user_days_before;
DROP TABLE user_days_after;
