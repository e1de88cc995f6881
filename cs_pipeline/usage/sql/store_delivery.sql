-- Replace the partition's delivery in the warehouse, keeping each event_id once: the copy
-- from the earliest delivery (partition_date, source_file, source_row) is the event, later
-- copies wait in usage_event_copies. Independent of the order days are materialised in.
-- Only event_ids with more than one copy in play are ranked; the bulk goes straight in.
-- Variables: partition_date, run_id.

-- Events this day held until now: if the new delivery lacks them, a later copy takes over.
CREATE OR REPLACE TEMP TABLE released_ids AS
SELECT event_id FROM usage_events WHERE partition_date = getvariable('partition_date');

DELETE FROM usage_events WHERE partition_date = getvariable('partition_date');
-- the day's keys go with its events (a re-run would find each of them a candidate); the
-- touched days' keys are rebuilt after storing (refresh_event_keys.sql)
DELETE FROM usage_event_keys WHERE partition_date = getvariable('partition_date');
DELETE FROM usage_event_copies WHERE partition_date = getvariable('partition_date');
DELETE FROM rejected_events WHERE partition_date = getvariable('partition_date');

-- Evidence: a limit-rejected row's normalised fields; otherwise the row as delivered.
INSERT INTO rejected_events
SELECT getvariable('partition_date'), s.source_file, s.source_row, s.reason,
    CASE
        WHEN s.reason IN ('module_limit', 'action_limit')
            THEN event_evidence(s.event_id, s.ts, s.account_id, s.user_id, s.module, s.action)
        ELSE r.raw
    END,
    getvariable('run_id')
FROM (SELECT * FROM staged WHERE reason IS NOT NULL) s
LEFT JOIN rejected_as_delivered r USING (source_file, source_row);

-- An account's events that retention purged stay out, up to the day it was purged through.
CREATE OR REPLACE TEMP VIEW delivered AS
SELECT s.event_id, s.ts, s.event_date, s.account_id, s.user_id, s.module, s.action,
    getvariable('partition_date') AS partition_date, s.source_file, s.source_row
FROM staged s
ANTI JOIN retention_log r ON r.account_id = s.account_id AND s.event_date <= r.purged_through
WHERE s.reason IS NULL;

-- The stored copies (from other days) of this delivery's events. The probe reads the 8-byte
-- keys of every stored event (cs_pipeline/event_keys.py), not their event_id strings; the
-- event_ids are compared only in the delivery days where a key matched (a key two different
-- ids share drops out there), and the few matches are then fetched whole by rowid.
CREATE OR REPLACE TEMP TABLE candidate_keys AS
SELECT k.partition_date, k.event_key FROM usage_event_keys k SEMI JOIN delivered d ON k.event_key = hash(d.event_id);

CREATE OR REPLACE TEMP TABLE stored_match_rowids AS
SELECT e.rowid AS stored_rowid
FROM usage_events e
SEMI JOIN (SELECT c.partition_date, d.event_id FROM delivered d JOIN candidate_keys c ON hash(d.event_id) = c.event_key) m
    ON e.partition_date = m.partition_date AND e.event_id = m.event_id;

CREATE OR REPLACE TEMP TABLE stored_matches AS
SELECT rowid AS stored_rowid, * EXCLUDE (run_id)
FROM usage_events WHERE rowid IN (SELECT stored_rowid FROM stored_match_rowids);

CREATE OR REPLACE TEMP TABLE contested_ids AS
SELECT event_id FROM delivered GROUP BY event_id HAVING count(*) > 1
UNION
SELECT event_id FROM stored_matches
UNION
SELECT c.event_id FROM usage_event_copies c SEMI JOIN delivered d ON c.event_id = d.event_id
UNION
SELECT c.event_id FROM usage_event_copies c SEMI JOIN released_ids r ON c.event_id = r.event_id;

-- Every copy of each contested event_id, ranked in delivery order.
CREATE OR REPLACE TEMP TABLE contenders AS
SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY partition_date, source_file, source_row) = 1 AS wins
FROM (
    SELECT NULL::BIGINT AS stored_rowid, d.*, 'delivered' AS origin
    FROM delivered d SEMI JOIN contested_ids USING (event_id)
    UNION ALL
    SELECT *, 'stored' FROM stored_matches
    UNION ALL
    SELECT NULL::BIGINT, c.* EXCLUDE (run_id), 'copy'
    FROM usage_event_copies c SEMI JOIN contested_ids USING (event_id)
);

-- A stored event that an earlier delivery now precedes becomes a copy.
DELETE FROM usage_events
WHERE rowid IN (SELECT stored_rowid FROM contenders WHERE origin = 'stored' AND NOT wins);
DELETE FROM usage_event_copies
WHERE event_id IN (SELECT event_id FROM contenders WHERE origin = 'copy');

INSERT INTO usage_events
SELECT d.*, getvariable('run_id')
FROM delivered d ANTI JOIN contested_ids USING (event_id);

INSERT INTO usage_events
SELECT * EXCLUDE (stored_rowid, origin, wins), getvariable('run_id')
FROM contenders WHERE wins AND origin <> 'stored';

INSERT INTO usage_event_copies
SELECT * EXCLUDE (stored_rowid, origin, wins), getvariable('run_id')
FROM contenders WHERE NOT wins;

-- Delivery days whose stored events this run changed (this day; a day whose stored copy lost
-- to an earlier delivery; a day whose waiting copy took over): their aggregates are rebuilt.
CREATE OR REPLACE TEMP TABLE touched_partitions AS
SELECT getvariable('partition_date') AS partition_date
UNION
SELECT partition_date FROM contenders WHERE (origin = 'stored') <> wins;
