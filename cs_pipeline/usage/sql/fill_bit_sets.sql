-- Schema upgrade to bit sets (cs_pipeline/usage/upgrade.py), second step, for the rows of one
-- delivery day (a day at a time: the whole history at once would spill gigabytes to disk): each
-- row's module_bits and action_bits from its `modules` list and `action_events` keys, each set as
-- long as its own highest number needs, as refresh_aggregates.sql makes them.
-- Variables: partition_date, and those number_stored_values.sql sets.
UPDATE usage_account_days d
SET module_bits = s.module_bits, action_bits = s.action_bits
FROM (
    SELECT event_date, account_id,
        bit_set(CASE kind WHEN 'module' THEN id END, getvariable('module_bits_length')) AS module_bits,
        bit_set(CASE kind WHEN 'action' THEN id END, getvariable('action_bits_length')) AS action_bits
    FROM (
        SELECT event_date, account_id, 'module' AS kind, unnest(modules) AS value
        FROM usage_account_days WHERE partition_date = getvariable('partition_date')
        UNION ALL
        SELECT event_date, account_id, 'action', unnest(map_keys(action_events))
        FROM usage_account_days WHERE partition_date = getvariable('partition_date')
    )
    JOIN usage_value_ids USING (kind, value)
    GROUP BY event_date, account_id
) s
WHERE d.partition_date = getvariable('partition_date') AND d.event_date = s.event_date
  AND d.account_id = s.account_id;
