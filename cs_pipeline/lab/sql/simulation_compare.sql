-- The per-day comparison of production and draft health (docs/health-lab.md#simulation-database).
-- Needs simulation_health (the draft's health of start..end) and the temp table
-- production_health (the published account_health of start..end, one row per account and day).
-- Variables: first_day, last_day, run_id.

-- Label counts of both sides, every day x label (0 when none).
CREATE TABLE simulation_label_counts AS
WITH days AS (
    SELECT CAST(day AS DATE) AS date
    FROM range(getvariable('first_day'), getvariable('last_day') + 1, INTERVAL 1 DAY) AS days(day)
),
labels AS (SELECT unnest(health_labels()) AS health),
production AS (SELECT date, health, count(*) AS accounts FROM production_health GROUP BY ALL),
draft AS (SELECT date, health, count(*) AS accounts FROM simulation_health GROUP BY ALL)
SELECT days.date, labels.health,
    coalesce(production.accounts, 0) AS production_accounts,
    coalesce(draft.accounts, 0) AS draft_accounts,
    getvariable('run_id') AS run_id
FROM days CROSS JOIN labels
LEFT JOIN production USING (date, health)
LEFT JOIN draft USING (date, health)
ORDER BY days.date, list_position(health_labels(), labels.health);

-- The production -> draft transition matrix of each day: one row per cell with accounts in it;
-- a null label is "no health row on that side".
CREATE TABLE simulation_transitions AS
SELECT date, p.health AS production_health, d.health AS draft_health, count(*) AS accounts,
    getvariable('run_id') AS run_id
FROM production_health p FULL JOIN simulation_health d USING (date, account_id)
GROUP BY ALL
ORDER BY ALL;

-- The accounts whose label changes, with both sides' profile and reasons.
CREATE TABLE simulation_changes AS
SELECT date, account_id,
    p.profile AS production_profile, p.health AS production_health, p.reasons AS production_reasons,
    d.profile AS draft_profile, d.health AS draft_health, d.reasons AS draft_reasons,
    getvariable('run_id') AS run_id
FROM production_health p FULL JOIN simulation_health d USING (date, account_id)
WHERE p.health IS DISTINCT FROM d.health
ORDER BY date, account_id;
