-- The backtests of production (schema production) and of the draft (schema draft) side by side
-- (docs/health-lab.md#simulation-database): one view per backtest table, joined on its key.
-- A row one side lacks (a profile or rule only one config has, a churn only one side considers)
-- has nulls on the other.
-- Plain views (no temporary macro): any reader of the database can query them.
CREATE VIEW simulation_backtest AS
SELECT profile, health,
    p.days AS production_days, p.positive_days AS production_positive_days,
    p.churn_rate AS production_churn_rate, p.lift AS production_lift,
    d.days AS draft_days, d.positive_days AS draft_positive_days,
    d.churn_rate AS draft_churn_rate, d.lift AS draft_lift
FROM production.health_backtest p FULL JOIN draft.health_backtest d USING (profile, health)
ORDER BY profile, health;

CREATE VIEW simulation_backtest_rules AS
SELECT profile, rule,
    p.against_days AS production_against_days, p.positive_days AS production_positive_days,
    p.churn_rate AS production_churn_rate, p.lift AS production_lift,
    d.against_days AS draft_against_days, d.positive_days AS draft_positive_days,
    d.churn_rate AS draft_churn_rate, d.lift AS draft_lift
FROM production.health_backtest_rules p FULL JOIN draft.health_backtest_rules d USING (profile, rule)
ORDER BY profile, rule;

CREATE VIEW simulation_backtest_churns AS
SELECT account_id, churn_date,
    p.flagged AS production_flagged, p.lead_days AS production_lead_days,
    d.flagged AS draft_flagged, d.lead_days AS draft_lead_days
FROM production.health_backtest_churns p FULL JOIN draft.health_backtest_churns d USING (account_id, churn_date)
ORDER BY churn_date, account_id;
