-- Schema upgrade to bit sets (cs_pipeline/usage/upgrade.py): number every module and action of
-- the stored usage_account_days rows in usage_value_ids by first delivery day, then name, then
-- fill each row's module_bits and action_bits from its `modules` list and `action_events` keys,
-- each set as long as its own highest number needs, as refresh_aggregates.sql makes them.
CREATE OR REPLACE TEMP TABLE stored_values AS
SELECT partition_date, event_date, account_id, 'module' AS kind, unnest(modules) AS value
FROM usage_account_days
UNION ALL
SELECT partition_date, event_date, account_id, 'action', unnest(map_keys(action_events))
FROM usage_account_days;

INSERT INTO usage_value_ids
SELECT kind, value, row_number() OVER (PARTITION BY kind ORDER BY first_day, value)
FROM (SELECT kind, value, min(partition_date) AS first_day FROM stored_values GROUP BY kind, value);

SET VARIABLE action_bits_length = (SELECT bit_set_length(max(id)) FROM usage_value_ids WHERE kind = 'action');
SET VARIABLE module_bits_length = (SELECT bit_set_length(max(id)) FROM usage_value_ids WHERE kind = 'module');

CREATE OR REPLACE TEMP TABLE stored_bit_sets AS
SELECT partition_date, event_date, account_id,
    bit_set_resized(
        bitstring_agg(getvariable('module_bits_length') + 1 - id, 1, getvariable('module_bits_length'))
            FILTER (kind = 'module'),
        bit_set_length(max(id) FILTER (kind = 'module'))
    ) AS module_bits,
    bit_set_resized(
        bitstring_agg(getvariable('action_bits_length') + 1 - id, 1, getvariable('action_bits_length'))
            FILTER (kind = 'action'),
        bit_set_length(max(id) FILTER (kind = 'action'))
    ) AS action_bits
FROM stored_values JOIN usage_value_ids USING (kind, value)
GROUP BY partition_date, event_date, account_id;

UPDATE usage_account_days d
SET module_bits = s.module_bits, action_bits = s.action_bits
FROM stored_bit_sets s
WHERE d.partition_date = s.partition_date AND d.event_date = s.event_date AND d.account_id = s.account_id;

DROP TABLE stored_values;
DROP TABLE stored_bit_sets;
