-- health_backtest: per profile ('*' too) x label, even with 0 days (docs/health-lab.md#churn-rate-and-lift-per-label).
-- Reads backtest_observed and backtest_base (scored_days.sql). Writes {output}.health_backtest.
INSERT INTO {output}.health_backtest BY NAME
SELECT i.*, figures.*
FROM backtest_identity i
CROSS JOIN (
    SELECT b.profile, l.health, count(o.profile) AS days, count(*) FILTER (o.positive) AS positive_days,
        backtest_rate(count(*) FILTER (o.positive), count(o.profile)) AS churn_rate,
        backtest_lift(backtest_rate(count(*) FILTER (o.positive), count(o.profile)), any_value(b.churn_rate)) AS lift
    FROM backtest_base b
    CROSS JOIN (SELECT unnest(['Good', 'Average', 'Poor']) AS health) l
    LEFT JOIN backtest_observed o ON o.profile = b.profile AND o.health = l.health
    GROUP BY b.profile, l.health
) figures;
