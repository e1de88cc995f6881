-- The keys of every delivery day in touched_partitions (cs_pipeline/event_keys.py), rebuilt
-- from the events now stored for it: one (partition_date, hash(event_id)) per usage_events row.
DELETE FROM usage_event_keys WHERE partition_date IN (SELECT partition_date FROM touched_partitions);

INSERT INTO usage_event_keys
SELECT partition_date, hash(event_id) FROM usage_events
WHERE partition_date IN (SELECT partition_date FROM touched_partitions);
