-- The report's data of one backtest (lab/report.py read_side), five queries in order. {health}:
-- the health relation backtested; {output}: the schema of its tables.
-- Variables: backtest_start, backtest_end, backtest_horizon.

-- the health mix over time: accounts per label and day, No value included
SELECT date, health, count(*) AS accounts
FROM {health}
WHERE date BETWEEN getvariable('backtest_start') AND getvariable('backtest_end')
GROUP BY ALL ORDER BY date, health;

-- the lift per label, all profiles first
SELECT profile, health, days, positive_days, churn_rate, lift
FROM {output}.health_backtest
WHERE "start" = getvariable('backtest_start') AND "end" = getvariable('backtest_end')
    AND horizon = getvariable('backtest_horizon')
ORDER BY profile <> '*', profile, list_position(['Poor', 'Average', 'Good'], health);

-- the lift per rule
SELECT profile, rule, against_days, positive_days, churn_rate, lift
FROM {output}.health_backtest_rules
WHERE "start" = getvariable('backtest_start') AND "end" = getvariable('backtest_end')
    AND horizon = getvariable('backtest_horizon')
ORDER BY profile, rule;

-- the churns and their lead times
SELECT account_id, churn_date, flagged, lead_days
FROM {output}.health_backtest_churns
WHERE "start" = getvariable('backtest_start') AND "end" = getvariable('backtest_end')
    AND horizon = getvariable('backtest_horizon')
ORDER BY churn_date, account_id;

-- the health of the churned accounts on each of the horizon's days before their churn (in the range)
SELECT h.date - c.churn_date AS days_to_churn, h.health, count(*) AS accounts
FROM {output}.health_backtest_churns c
JOIN {health} h ON h.account_id = c.account_id
    AND h.date BETWEEN c.churn_date - CAST(getvariable('backtest_horizon') AS INTEGER) AND c.churn_date - 1
    AND h.date BETWEEN getvariable('backtest_start') AND getvariable('backtest_end')
WHERE c."start" = getvariable('backtest_start') AND c."end" = getvariable('backtest_end')
    AND c.horizon = getvariable('backtest_horizon')
GROUP BY ALL ORDER BY days_to_churn, health;
