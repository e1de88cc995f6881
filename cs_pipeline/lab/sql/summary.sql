-- The key figures per profile ('*': all) of the backtest just written, for the terminal and the
-- lab asset's metadata. A churn counts for the profile of its last scored day in the lead window.
-- {labels}, {churns}, {rules}: "FROM <table> WHERE <this backtest's rows>". Reads backtest_scored.
WITH labels AS (
    SELECT profile, sum(days) AS days, sum(positive_days) AS positive_days,
        any_value(lift) FILTER (health = 'Poor') AS lift_poor,
        any_value(lift) FILTER (health = 'Good') AS lift_good
    {labels}
    GROUP BY profile
),
churn_profiles AS (
    SELECT c.account_id, c.churn_date, any_value(c.flagged) AS flagged, any_value(c.lead_days) AS lead_days,
        arg_max(s.profile, s.date) AS profile
    FROM (SELECT * {churns}) c
    JOIN backtest_scored s ON s.account_id = c.account_id
        AND s.date >= c.churn_date - backtest_horizon() AND s.date < c.churn_date
    GROUP BY c.account_id, c.churn_date
),
churn_figures AS (
    SELECT profile, count(*) AS churns, count(*) FILTER (flagged) AS flagged,
        quantile_cont(lead_days, [0.25, 0.5, 0.75]) AS quartiles
    FROM churn_profiles GROUP BY profile
    UNION ALL
    SELECT '*', count(*), count(*) FILTER (flagged), quantile_cont(lead_days, [0.25, 0.5, 0.75])
    FROM churn_profiles
),
ranked AS (
    SELECT profile, rule, lift,
        row_number() OVER (PARTITION BY profile ORDER BY lift DESC, rule) AS highest,
        row_number() OVER (PARTITION BY profile ORDER BY lift, rule) AS lowest
    FROM (SELECT * {rules})
    WHERE lift IS NOT NULL
),
rule_figures AS (
    SELECT profile,
        list(struct_pack(rule := rule, lift := lift) ORDER BY highest) FILTER (highest <= 3) AS top,
        list(struct_pack(rule := rule, lift := lift) ORDER BY lowest) FILTER (lowest <= 3) AS bottom
    FROM ranked GROUP BY profile
)
SELECT l.profile, l.days, l.positive_days, l.lift_poor, l.lift_good,
    coalesce(c.churns, 0), coalesce(c.flagged, 0), c.quartiles, r.top, r.bottom
FROM labels l
LEFT JOIN churn_figures c USING (profile)
LEFT JOIN rule_figures r USING (profile);
