-- Store the rows of {incoming} as {table}'s snapshot of snapshot_date, as versions
-- (docs/data-model.md#snapshot-storage): only the rows that differ from the snapshot in force on
-- that date are written, so a date that changed nothing writes nothing. Each row's identity is
-- its content and its occurrence (0, 1... among identical rows of the snapshot); a version of an
-- identity covers a run of consecutive snapshot dates, [valid_from, valid_to), valid_to null
-- when the run reaches the newest date. Variables: snapshot_date, next_snapshot_date (the
-- first snapshot date after it, else null), run_id. Python fills in the braces from the registry
-- (content_hash: a hash of the scalar payload columns; same_ic: every payload column and the
-- occurrence equal, a MAP column that the incoming rows hold as its entries compared with the
-- stored map's entries; payload_of_changed: each payload column of whichever side of the full
-- join below holds the row, such entries made a map).
--
-- {incoming} is read where it lies (a registered frame or a view), never copied whole: only the
-- rows that differ from the stored ones are. Identical rows are interchangeable, so a row whose
-- content hash no other incoming row has is occurrence 0; only the rows sharing a hash (the
-- duplicates, and the rare different rows whose hashes collide) are numbered, by their content
-- itself. The hash only picks the rows to number: equal content is always compared column by column.
CREATE OR REPLACE TEMP TABLE version_repeated_hash AS
SELECT content_hash FROM (SELECT {content_hash} AS content_hash FROM {incoming})
GROUP BY content_hash HAVING count(*) > 1;

CREATE OR REPLACE TEMP VIEW version_incoming AS
SELECT {payload}, 0 AS occurrence
FROM {incoming}
WHERE {content_hash} NOT IN (SELECT content_hash FROM version_repeated_hash)
UNION ALL
SELECT {payload}, (row_number() OVER (PARTITION BY {payload}) - 1)::INTEGER
FROM {incoming}
WHERE {content_hash} IN (SELECT content_hash FROM version_repeated_hash);

-- The identities the date gains (version_row null) and those it loses (the version in force on the
-- date, cut around it), in one full join of the incoming rows with what snapshot_date held until now
-- (a new date between two others: what the earlier one held), on every payload column and the occurrence.
CREATE OR REPLACE TEMP TABLE version_changed AS
SELECT {payload_of_changed}, coalesce(i.occurrence, c.occurrence) AS occurrence,
    c.version_row, c.valid_from, c.valid_to
FROM (SELECT *, true AS is_incoming FROM version_incoming) i
FULL JOIN (
    SELECT rowid AS version_row, * FROM {table} WHERE in_force(valid_from, valid_to, getvariable('snapshot_date'))
) c ON {same_ic}
WHERE i.is_incoming IS NULL OR c.version_row IS NULL;

CREATE OR REPLACE TEMP VIEW version_removed AS
SELECT * FROM version_changed WHERE version_row IS NOT NULL;

-- identities the date gains, with the versions they join: the one ending on the date (the
-- previous date held it) and the one starting on the next date
CREATE OR REPLACE TEMP TABLE version_added AS
SELECT i.* EXCLUDE (version_row, valid_from, valid_to),
    l.version_row AS left_row, l.valid_from AS left_from, r.version_row AS right_row, r.valid_to AS right_to
FROM (SELECT * FROM version_changed WHERE version_row IS NULL) i
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
