-- When a delivery changes which values the limits admit (an earlier day materialised after
-- a later one, or a re-delivery), every valid copy of each affected event — stored, waiting
-- as a copy, or rejected for a limit — is judged again and ranked again, so the result is
-- the one an in-order run gives. Runs only when changed_vocabulary is not empty.
-- Variables: partition_date, run_id.
-- This delivery's own rows were judged with the new limits already; an event is re-judged
-- when a copy from another day uses a value whose standing changed.
CREATE OR REPLACE TEMP TABLE changed_ids AS
SELECT event_id FROM usage_events
WHERE partition_date <> getvariable('partition_date')
  AND (module IN (SELECT value FROM changed_vocabulary WHERE kind = 'module')
       OR action IN (SELECT value FROM changed_vocabulary WHERE kind = 'action'))
UNION
SELECT event_id FROM usage_event_copies
WHERE partition_date <> getvariable('partition_date')
  AND (module IN (SELECT value FROM changed_vocabulary WHERE kind = 'module')
       OR action IN (SELECT value FROM changed_vocabulary WHERE kind = 'action'))
UNION
SELECT raw ->> 'event_id' FROM rejected_events
WHERE partition_date <> getvariable('partition_date') AND reason IN ('module_limit', 'action_limit')
  AND (raw ->> 'module' IN (SELECT value FROM changed_vocabulary WHERE kind = 'module')
       OR raw ->> 'action' IN (SELECT value FROM changed_vocabulary WHERE kind = 'action'));

CREATE OR REPLACE TEMP TABLE limit_pool AS
SELECT * EXCLUDE (run_id), 'stored' AS origin FROM usage_events WHERE event_id IN (SELECT event_id FROM changed_ids)
UNION ALL
SELECT * EXCLUDE (run_id), 'copy' FROM usage_event_copies WHERE event_id IN (SELECT event_id FROM changed_ids)
UNION ALL
SELECT raw ->> 'event_id', CAST(raw ->> 'ts' AS TIMESTAMPTZ), CAST(CAST(raw ->> 'ts' AS TIMESTAMPTZ) AS DATE),
    raw ->> 'account_id', raw ->> 'user_id', raw ->> 'module', raw ->> 'action',
    partition_date, source_file, source_row, 'rejected'
FROM rejected_events
WHERE reason IN ('module_limit', 'action_limit') AND raw ->> 'event_id' IN (SELECT event_id FROM changed_ids);

DELETE FROM usage_events WHERE event_id IN (SELECT event_id FROM changed_ids);
DELETE FROM usage_event_copies WHERE event_id IN (SELECT event_id FROM changed_ids);
DELETE FROM rejected_events
WHERE reason IN ('module_limit', 'action_limit') AND raw ->> 'event_id' IN (SELECT event_id FROM changed_ids);

CREATE OR REPLACE TEMP TABLE limit_judged AS
SELECT *,
    CASE
        WHEN module IS NOT NULL AND module NOT IN (SELECT value FROM allowed_vocabulary WHERE kind = 'module') THEN 'module_limit'
        WHEN action NOT IN (SELECT value FROM allowed_vocabulary WHERE kind = 'action') THEN 'action_limit'
    END AS reason
FROM limit_pool;

INSERT INTO rejected_events
SELECT partition_date, source_file, source_row, reason,
    event_evidence(event_id, ts, account_id, user_id, module, action), getvariable('run_id')
FROM limit_judged WHERE reason IS NOT NULL;

CREATE OR REPLACE TEMP TABLE limit_ranked AS
SELECT * EXCLUDE (origin, reason),
    row_number() OVER (PARTITION BY event_id ORDER BY partition_date, source_file, source_row) = 1 AS wins
FROM limit_judged WHERE reason IS NULL;

INSERT INTO usage_events SELECT * EXCLUDE (wins), getvariable('run_id') FROM limit_ranked WHERE wins;
INSERT INTO usage_event_copies SELECT * EXCLUDE (wins), getvariable('run_id') FROM limit_ranked WHERE NOT wins;

INSERT INTO touched_partitions SELECT DISTINCT partition_date FROM limit_pool
EXCEPT SELECT partition_date FROM touched_partitions;
