-- Schema upgrade (migrations.py): {old}, one full copy per snapshot_date, into {new} as versions
-- (docs/data-model.md#snapshot-storage), the snapshot dates being those snapshot_dates holds for
-- {asset}. A row's identity is its content and its occurrence among identical rows of its date;
-- each run of consecutive snapshot dates an identity is in becomes one version, valid from the
-- run's first date to the snapshot date after its last (null after the newest): the gaps and
-- islands of the identity's dates in the list of snapshot dates.
INSERT INTO {new} BY NAME
WITH dates AS (
    SELECT snapshot_date, row_number() OVER (ORDER BY snapshot_date) AS date_number,
        lead(snapshot_date) OVER (ORDER BY snapshot_date) AS next_date
    FROM snapshot_dates
    WHERE asset = '{asset}'
),
copies AS (
    SELECT {payload}, run_id, snapshot_date,
        (row_number() OVER (PARTITION BY snapshot_date, {payload}) - 1)::INTEGER AS occurrence
    FROM {old}
),
islands AS (
    SELECT c.*, d.next_date,
        d.date_number - row_number() OVER (PARTITION BY {payload}, c.occurrence ORDER BY c.snapshot_date) AS island
    FROM copies c JOIN dates d USING (snapshot_date)
)
SELECT {payload}, occurrence, min(snapshot_date) AS valid_from, arg_max_null(next_date, snapshot_date) AS valid_to,
    arg_max(run_id, snapshot_date) AS run_id
FROM islands
GROUP BY {payload}, occurrence, island;
