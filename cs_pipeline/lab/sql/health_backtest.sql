-- health_backtest: per profile ('*' too) x label, even with 0 days (docs/health-lab.md#churn-rate-and-lift-per-label).
-- Reads backtest_observed and backtest_base (scored_days.sql). Writes {output}.health_backtest.
-- Variables: backtest_start, backtest_end, backtest_horizon, backtest_config_sha256, backtest_run_id.
DELETE FROM {output}.health_backtest
WHERE "start" = getvariable('backtest_start') AND "end" = getvariable('backtest_end')
    AND horizon = backtest_horizon();

INSERT INTO {output}.health_backtest BY NAME
SELECT getvariable('backtest_start') AS "start", getvariable('backtest_end') AS "end",
    backtest_horizon() AS horizon, b.profile, l.health,
    count(o.profile) AS days, count(*) FILTER (o.positive) AS positive_days,
    backtest_rate(count(*) FILTER (o.positive), count(o.profile)) AS churn_rate,
    backtest_lift(backtest_rate(count(*) FILTER (o.positive), count(o.profile)), any_value(b.churn_rate)) AS lift,
    getvariable('backtest_config_sha256') AS config_sha256, getvariable('backtest_run_id') AS run_id
FROM backtest_base b
CROSS JOIN (SELECT unnest(['Good', 'Average', 'Poor']) AS health) l
LEFT JOIN backtest_observed o ON o.profile = b.profile AND o.health = l.health
GROUP BY b.profile, l.health;
