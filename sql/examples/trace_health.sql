-- Audit: one health row traced to its inputs — the latest Poor row here; put an account_id
-- and a date in `picked` for another. Each input carries the run_id that wrote it; the run's
-- tags in Dagster hold the config path and hash and the cs_pipeline version. Runs on the
-- published layer (analytics.duckdb): the snapshot used is seen through status_history on
-- that date; its full rows (account_versions in force on it) are in the warehouse only.
WITH picked AS (
    SELECT account_id, date FROM account_health WHERE health = 'Poor' ORDER BY date DESC, account_id LIMIT 1
)
SELECT h.date, h.account_id, h.profile, h.health, h.reasons, h.run_id AS health_run,
    m.snapshot_date, m.usage_frequency, m.engagement_score, m.license_utilization, m.run_id AS metrics_run,
    r.rollup_events_30d, r.run_id AS rollups_run,
    s.status AS snapshot_status, s.run_id AS status_history_run,
    (SELECT count(*) FROM usage_events e
     WHERE e.account_id = h.account_id AND e.partition_date <= h.date
       AND e.event_date BETWEEN h.date - 29 AND h.date) AS events_30d_stored,
    (SELECT list(DISTINCT e.source_file ORDER BY e.source_file) FROM usage_events e
     WHERE e.account_id = h.account_id AND e.partition_date <= h.date
       AND e.event_date BETWEEN h.date - 29 AND h.date) AS source_files
FROM picked p
JOIN account_health h USING (account_id, date)
JOIN account_metrics m USING (account_id, date)
LEFT JOIN account_rollups r USING (account_id, date)
LEFT JOIN status_history s ON s.account_id = h.account_id AND s.date = m.snapshot_date;
