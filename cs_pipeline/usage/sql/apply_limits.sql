-- Per-tenant limits on distinct modules and actions (docs/data-model.md#module-and-action-limits):
-- record what this delivery brings, admit the first `limit` values by (first delivery day,
-- earliest ts there, value), and reject this delivery's rows that use a value beyond the
-- limit. A value counts once a row that carries it passes validation, whatever the other
-- limit decides for that row.
-- Variables: partition_date, module_limit, action_limit.
CREATE OR REPLACE TEMP MACRO allowed_values() AS TABLE
SELECT kind, value
FROM (
    SELECT kind, value,
        row_number() OVER (PARTITION BY kind ORDER BY min(partition_date), arg_min(first_ts, partition_date), value) AS rank
    FROM usage_vocabulary
    GROUP BY kind, value
)
WHERE rank <= CASE kind WHEN 'module' THEN getvariable('module_limit') ELSE getvariable('action_limit') END;

CREATE OR REPLACE TEMP TABLE allowed_before AS SELECT * FROM allowed_values();

DELETE FROM usage_vocabulary WHERE partition_date = getvariable('partition_date');

INSERT INTO usage_vocabulary
SELECT getvariable('partition_date'), kind, value, min(ts)
FROM (
    SELECT 'module' AS kind, module AS value, ts FROM staged WHERE reason IS NULL AND module IS NOT NULL
    UNION ALL
    SELECT 'action', action, ts FROM staged WHERE reason IS NULL
)
GROUP BY kind, value;

CREATE OR REPLACE TEMP TABLE allowed_vocabulary AS SELECT * FROM allowed_values();

-- Values whose standing this delivery changed: other days' rows using them are re-judged.
CREATE OR REPLACE TEMP TABLE changed_vocabulary AS
(SELECT * FROM allowed_before EXCEPT SELECT * FROM allowed_vocabulary)
UNION
(SELECT * FROM allowed_vocabulary EXCEPT SELECT * FROM allowed_before);

UPDATE staged SET reason = 'module_limit'
WHERE reason IS NULL AND module IS NOT NULL
  AND module NOT IN (SELECT value FROM allowed_vocabulary WHERE kind = 'module');

UPDATE staged SET reason = 'action_limit'
WHERE reason IS NULL
  AND action NOT IN (SELECT value FROM allowed_vocabulary WHERE kind = 'action');
