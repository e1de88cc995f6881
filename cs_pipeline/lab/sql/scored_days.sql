-- The backtest's scored days (docs/health-lab.md#scored-observable-and-positive-days): every
-- (account, day) of [backtest_start, backtest_end] with a Good / Average / Poor health row and
-- status group Free or Paying that day; observable when the horizon after it lies within the
-- status history; positive when a churn of the account is dated in (day, day + horizon].
-- Relations (named by the caller): {health}, {status_history}, {status_changes}.
-- Variables: backtest_start, backtest_end, backtest_horizon.
CREATE OR REPLACE TEMP TABLE backtest_churn_events AS
SELECT DISTINCT account_id, date AS churn_date
FROM {status_changes}
WHERE kind = 'churn';

-- positive: the account's first churn after the day (ASOF: the nearest churn_date > date) is
-- within the horizon
CREATE OR REPLACE TEMP TABLE backtest_scored AS
WITH newest AS (SELECT max(date) AS status_until FROM {status_history}),
scored AS (
    SELECT h.date, h.account_id, h.profile, h.health
    FROM {health} h
    JOIN {status_history} s ON s.date = h.date AND s.account_id = h.account_id
    WHERE h.date BETWEEN getvariable('backtest_start') AND getvariable('backtest_end')
        AND h.health IN ('Good', 'Average', 'Poor')
        AND active_status_group(s.status_group)
)
SELECT d.date, d.account_id, d.profile, d.health,
    coalesce(d.date + backtest_horizon() <= newest.status_until, false) AS observable,
    coalesce(c.churn_date <= d.date + backtest_horizon(), false) AS positive
FROM scored d
ASOF LEFT JOIN backtest_churn_events c ON c.account_id = d.account_id AND c.churn_date > d.date
CROSS JOIN newest;

-- the scored observable days, once per profile and once for all profiles ('*')
CREATE OR REPLACE TEMP TABLE backtest_observed AS
SELECT profile, health, positive FROM backtest_scored WHERE observable
UNION ALL
SELECT '*', health, positive FROM backtest_scored WHERE observable;

-- each profile's base: the configured ones, those with health rows in the range, and '*'
CREATE OR REPLACE TEMP TABLE backtest_base AS
SELECT p.profile, count(o.profile) AS days, count(*) FILTER (o.positive) AS positive_days,
    backtest_rate(count(*) FILTER (o.positive), count(o.profile)) AS churn_rate
FROM (
    SELECT unnest(getvariable('backtest_profiles')) AS profile
    UNION SELECT '*'
    UNION SELECT DISTINCT profile FROM backtest_scored
) p
LEFT JOIN backtest_observed o USING (profile)
GROUP BY p.profile;
