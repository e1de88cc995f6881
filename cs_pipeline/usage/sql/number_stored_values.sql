-- Schema upgrade to bit sets (cs_pipeline/usage/upgrade.py), first step: number every module and
-- action of the stored usage_account_days rows in usage_value_ids, by first delivery day, then
-- name; then the length of a set holding every number, for fill_bit_sets.sql.
INSERT INTO usage_value_ids
SELECT kind, value, row_number() OVER (PARTITION BY kind ORDER BY first_day, value)
FROM (
    SELECT kind, value, min(partition_date) AS first_day
    FROM (
        SELECT partition_date, 'module' AS kind, unnest(modules) AS value FROM usage_account_days
        UNION ALL
        SELECT partition_date, 'action', unnest(map_keys(action_events)) FROM usage_account_days
    )
    GROUP BY kind, value
);

SET VARIABLE action_bits_length = (SELECT bit_set_length(max(id)) FROM usage_value_ids WHERE kind = 'action');
SET VARIABLE module_bits_length = (SELECT bit_set_length(max(id)) FROM usage_value_ids WHERE kind = 'module');
