-- health_backtest_churns (docs/health-lab.md#churns-recall-and-lead-time): each churn with a
-- scored day in its lead window [churn_date - horizon, churn_date - 1] (backtest_scored holds
-- only days of [start, end]); flagged when Poor on one of them, lead_days from the first.
-- Reads backtest_churn_events, backtest_scored. Writes {output}.health_backtest_churns.
INSERT INTO {output}.health_backtest_churns BY NAME
SELECT i.*, churns.*
FROM backtest_identity i
CROSS JOIN (
    SELECT c.account_id, c.churn_date, bool_or(s.health = 'Poor') AS flagged,
        CAST(c.churn_date - min(s.date) FILTER (s.health = 'Poor') AS INTEGER) AS lead_days
    FROM backtest_churn_events c
    JOIN backtest_scored s ON s.account_id = c.account_id
        AND s.date >= c.churn_date - backtest_horizon() AND s.date < c.churn_date
    GROUP BY c.account_id, c.churn_date
) churns;
