-- Store the rows of {incoming} as {table}'s snapshot of snapshot_date, as versions
-- (docs/data-model.md#snapshot-storage): only the rows that differ from the snapshot in force on
-- that date are written, so a date that changed nothing writes nothing. Each row's identity is
-- its content and its occurrence (0, 1... among identical rows of the snapshot); a version of an
-- identity covers a run of consecutive snapshot dates, [valid_from, valid_to), valid_to null
-- when the run reaches the newest date. Variables: snapshot_date, next_snapshot_date (the
-- first snapshot date after it, else null), run_id. Python fills in the braces from the registry.
-- (identical rows are interchangeable: a GROUP BY and its count number them, cheaper than a
-- window partitioned by every column)
CREATE OR REPLACE TEMP TABLE version_incoming AS
SELECT {payload}, unnest(range(copies))::INTEGER AS occurrence
FROM (SELECT {payload}, count(*) AS copies FROM {incoming} GROUP BY ALL);

-- what snapshot_date held until now (a new date between two others: what the earlier one held)
CREATE OR REPLACE TEMP TABLE version_current AS
SELECT rowid AS version_row, *
FROM {table}
WHERE in_force(valid_from, valid_to, getvariable('snapshot_date'));

-- identities the date loses: their version is cut around it
CREATE OR REPLACE TEMP TABLE version_removed AS
SELECT c.* FROM version_current c ANTI JOIN version_incoming i ON {same_ic};

-- identities the date gains, with the versions they join: the one ending on the date (the
-- previous date held it) and the one starting on the next date
CREATE OR REPLACE TEMP TABLE version_added AS
SELECT i.*, l.version_row AS left_row, l.valid_from AS left_from, r.version_row AS right_row, r.valid_to AS right_to
FROM (SELECT i.* FROM version_incoming i ANTI JOIN version_current c ON {same_ic}) i
LEFT JOIN (
    SELECT rowid AS version_row, * FROM {table} WHERE valid_to = getvariable('snapshot_date')
) l ON {same_il}
LEFT JOIN (
    SELECT rowid AS version_row, * FROM {table} WHERE valid_from = getvariable('next_snapshot_date')::DATE
) r ON {same_ir};

CREATE OR REPLACE TEMP TABLE version_new AS
-- a lost identity keeps the dates before this one, and those from the next one on
SELECT {payload}, occurrence, valid_from, getvariable('snapshot_date') AS valid_to
FROM version_removed
WHERE valid_from < getvariable('snapshot_date')
UNION ALL
SELECT {payload}, occurrence, getvariable('next_snapshot_date')::DATE, valid_to
FROM version_removed
WHERE getvariable('next_snapshot_date') IS NOT NULL
  AND (valid_to IS NULL OR valid_to > getvariable('next_snapshot_date')::DATE)
UNION ALL
-- a gained identity: one version from its left neighbour's start to its right neighbour's end
SELECT {payload}, occurrence, coalesce(left_from, getvariable('snapshot_date')),
    CASE WHEN right_row IS NULL THEN getvariable('next_snapshot_date')::DATE ELSE right_to END
FROM version_added;

DELETE FROM {table}
WHERE rowid IN (
    SELECT version_row FROM version_removed
    UNION ALL SELECT left_row FROM version_added WHERE left_row IS NOT NULL
    UNION ALL SELECT right_row FROM version_added WHERE right_row IS NOT NULL
);

INSERT INTO {table} BY NAME
SELECT *, getvariable('run_id') AS run_id FROM version_new;
