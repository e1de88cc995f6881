-- Replace the partition's delivery in the warehouse, keeping each event_id once: the copy
-- from the earliest delivery (partition_date, source_file, source_row) is the event, later
-- copies wait in usage_event_copies. Independent of the order days are materialised in.
-- Variables: partition_date, run_id.

-- Events this day held until now: if the new delivery lacks them, a later copy takes over.
CREATE OR REPLACE TEMP TABLE released_ids AS
SELECT event_id FROM usage_events WHERE partition_date = getvariable('partition_date');

DELETE FROM usage_events WHERE partition_date = getvariable('partition_date');
DELETE FROM usage_event_copies WHERE partition_date = getvariable('partition_date');
DELETE FROM rejected_events WHERE partition_date = getvariable('partition_date');

INSERT INTO rejected_events
SELECT getvariable('partition_date'), source_file, source_row, reason, raw, getvariable('run_id')
FROM staged
WHERE reason IS NOT NULL;

CREATE OR REPLACE TEMP TABLE accepted_ids AS
SELECT DISTINCT event_id FROM staged WHERE reason IS NULL;

-- Every copy of each affected event_id, ranked in delivery order.
CREATE OR REPLACE TEMP TABLE contenders AS
SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY partition_date, source_file, source_row) = 1 AS wins
FROM (
    SELECT event_id, ts, event_date, account_id, user_id, module, action,
        getvariable('partition_date') AS partition_date, source_file, source_row, 'delivered' AS origin
    FROM staged WHERE reason IS NULL
    UNION ALL
    SELECT event_id, ts, event_date, account_id, user_id, module, action,
        partition_date, source_file, source_row, 'stored'
    FROM usage_events WHERE event_id IN (SELECT event_id FROM accepted_ids)
    UNION ALL
    SELECT event_id, ts, event_date, account_id, user_id, module, action,
        partition_date, source_file, source_row, 'copy'
    FROM usage_event_copies
    WHERE event_id IN (SELECT event_id FROM accepted_ids UNION ALL SELECT event_id FROM released_ids)
);

-- A stored event that an earlier delivery now precedes becomes a copy.
DELETE FROM usage_events
WHERE event_id IN (SELECT event_id FROM contenders WHERE origin = 'stored' AND NOT wins);
DELETE FROM usage_event_copies
WHERE event_id IN (SELECT event_id FROM contenders WHERE origin = 'copy');

INSERT INTO usage_events
SELECT event_id, ts, event_date, account_id, user_id, module, action, partition_date, source_file,
    source_row, getvariable('run_id')
FROM contenders WHERE wins AND origin <> 'stored';

INSERT INTO usage_event_copies
SELECT event_id, ts, event_date, account_id, user_id, module, action, partition_date, source_file,
    source_row, getvariable('run_id')
FROM contenders WHERE NOT wins;
