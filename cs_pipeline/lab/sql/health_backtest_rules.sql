-- health_backtest_rules (docs/health-lab.md#lift-per-rule): per rule of a scorecard profile and
-- metric of a dimensional one, the profile's scored observable days it was against the account.
-- The rule counts (made by backtest.py from the profiles, below): profile, rule, against_days,
-- positive_days per rule, over backtest_rule_input. Reads backtest_base. Writes {output}.health_backtest_rules.
DELETE FROM {output}.health_backtest_rules
WHERE "start" = getvariable('backtest_start') AND "end" = getvariable('backtest_end')
    AND horizon = backtest_horizon();

INSERT INTO {output}.health_backtest_rules BY NAME
SELECT getvariable('backtest_start') AS "start", getvariable('backtest_end') AS "end",
    backtest_horizon() AS horizon, r.profile, r.rule, r.against_days, r.positive_days,
    backtest_rate(r.positive_days, r.against_days) AS churn_rate,
    backtest_lift(backtest_rate(r.positive_days, r.against_days), b.churn_rate) AS lift,
    getvariable('backtest_config_sha256') AS config_sha256, getvariable('backtest_run_id') AS run_id
FROM (
{rule_counts}
) r
JOIN backtest_base b USING (profile);
