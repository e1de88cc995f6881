-- health_backtest_rules (docs/health-lab.md#lift-per-rule): per rule of a scorecard profile and
-- metric of a dimensional one, the profile's scored observable days it was against the account.
-- The rule counts (made by backtest.py from the profiles, below): profile, rule, against_days,
-- positive_days per rule, over backtest_rule_input. Reads backtest_base. Writes {output}.health_backtest_rules.
INSERT INTO {output}.health_backtest_rules BY NAME
SELECT i.*, r.profile, r.rule, r.against_days, r.positive_days,
    backtest_rate(r.positive_days, r.against_days) AS churn_rate,
    backtest_lift(backtest_rate(r.positive_days, r.against_days), b.churn_rate) AS lift
FROM (
{rule_counts}
) r
JOIN backtest_base b USING (profile)
CROSS JOIN backtest_identity i;
