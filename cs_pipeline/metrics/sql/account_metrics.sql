-- Usage metrics of every account for day `as_of` (docs/metrics.md) into the temp table
-- metric_rows (without custom metrics). Known at the end of as_of = the events delivered in
-- partitions up to as_of, read from the daily aggregates; windows by UTC event day.
-- Needs metric_accounts (metric_setup.sql) and metric_user_last_days. Variables: as_of.

-- Events per account and event day of window 30.
CREATE OR REPLACE TEMP TABLE metric_days AS
SELECT account_id, event_date, sum(events) AS events
FROM usage_account_days
WHERE partition_date <= getvariable('as_of')
  AND event_date BETWEEN getvariable('as_of') - 29 AND getvariable('as_of')
GROUP BY account_id, event_date;

-- Distinct users per window: a user is active in window N when its last day in window 30 is
-- in it (metric_user_last_days, built by account_metrics.py).
CREATE OR REPLACE TEMP TABLE metric_users AS
SELECT account_id,
    count(*) FILTER (last_day >= getvariable('as_of')) AS active_users_1d,
    count(*) FILTER (last_day >= getvariable('as_of') - 6) AS active_users_7d,
    count(*) FILTER (last_day >= getvariable('as_of') - 13) AS active_users_14d,
    count(*) AS active_users_30d
FROM metric_user_last_days
GROUP BY account_id;

-- Distinct modules and actions of window 30: the OR of the account's bit sets, each made as long
-- as the longest in the window (docs/data-model.md#bit-sets), and its bits counted.
CREATE OR REPLACE TEMP TABLE metric_bit_sets AS
WITH window_sets AS (
    SELECT account_id, module_bits, action_bits
    FROM usage_account_days
    WHERE partition_date <= getvariable('as_of')
      AND event_date BETWEEN getvariable('as_of') - 29 AND getvariable('as_of')
),
lengths AS (
    SELECT max(bit_length(module_bits)) AS module_length, max(bit_length(action_bits)) AS action_length
    FROM window_sets
)
SELECT account_id,
    bit_count(bit_or(bit_set_resized(module_bits, module_length))) AS modules_used_30d,
    bit_count(bit_or(bit_set_resized(action_bits, action_length))) AS actions_used_30d
FROM window_sets, lengths
GROUP BY account_id;

CREATE OR REPLACE TEMP TABLE metric_rows AS
WITH day_stats AS (
    SELECT a.account_id,
        sum(d.events) FILTER (d.event_date >= getvariable('as_of') - 13) AS events_14d,
        sum(d.events) AS events_30d,
        count(*) FILTER (d.event_date >= getvariable('as_of') - 13) AS active_days_14d,
        count(*) AS active_days_30d,
        max(d.event_date) AS last_active_day,
        -- engagement counts only the days of window 14 on or after create_date
        sum(d.events) FILTER (d.event_date >= getvariable('as_of') - 13
                              AND (a.create_date IS NULL OR d.event_date >= a.create_date)) AS engagement_events
    FROM metric_accounts a
    JOIN metric_days d USING (account_id)
    GROUP BY a.account_id
),
counted AS (
    SELECT a.*,
        coalesce(u.active_users_1d, 0) AS active_users_1d,
        coalesce(u.active_users_7d, 0) AS active_users_7d,
        coalesce(u.active_users_14d, 0) AS active_users_14d,
        coalesce(u.active_users_30d, 0) AS active_users_30d,
        coalesce(s.events_14d, 0)::BIGINT AS events_14d,
        coalesce(s.events_30d, 0)::BIGINT AS events_30d,
        coalesce(s.active_days_14d, 0) AS active_days_14d,
        coalesce(s.active_days_30d, 0) AS active_days_30d,
        -- 30: no event in window 30 (the metrics read no further back)
        coalesce(getvariable('as_of') - s.last_active_day, 30)::INTEGER AS days_since_active_30d,
        coalesce(b.modules_used_30d, 0) AS modules_used_30d,
        coalesce(b.actions_used_30d, 0) AS actions_used_30d,
        coalesce(s.engagement_events, 0)::BIGINT AS engagement_events,
        CASE WHEN a.create_date IS NULL THEN 14
             ELSE greatest(1, least(14, getvariable('as_of') - a.create_date + 1)) END AS engagement_days
    FROM metric_accounts a
    LEFT JOIN metric_users u USING (account_id)
    LEFT JOIN day_stats s USING (account_id)
    LEFT JOIN metric_bit_sets b USING (account_id)
),
peers AS (
    -- avg = engagement_events / engagement_days >= 1 makes a peer; 360360 = lcm(1..14) turns
    -- every avg into an exact integer key, so ties and order are exact
    SELECT *,
        active_status_group(status_group) AND engagement_events >= engagement_days AS engaged,
        engagement_events * (360360 // engagement_days) AS engagement_key
    FROM counted
)
SELECT account_id, snapshot_date, account_type, status, status_group, create_date, renewal_date,
    licenses, contract_value, attributes,
    active_users_1d, active_users_7d, active_users_14d, active_users_30d,
    events_14d, events_30d, active_days_14d, active_days_30d, days_since_active_30d, modules_used_30d,
    actions_used_30d,
    CASE WHEN active_days_14d >= 9 THEN 'Daily'
         WHEN active_days_14d >= 2 THEN 'Weekly'
         WHEN active_days_30d >= 1 THEN 'Monthly'
         ELSE 'Inactive' END AS usage_frequency,
    CASE WHEN NOT active_status_group(status_group) THEN NULL
         WHEN NOT engaged THEN 0
         -- ceil(100 k / N): k = peers with avg <= this avg (ties included by the RANGE frame)
         ELSE ((100 * count(*) OVER (PARTITION BY engaged, status ORDER BY engagement_key)
                + count(*) OVER (PARTITION BY engaged, status) - 1)
               // count(*) OVER (PARTITION BY engaged, status)) END::INTEGER AS engagement_score,
    CASE WHEN licenses > 0 THEN 100 * active_users_30d / licenses END AS license_utilization,
    (getvariable('as_of') - create_date)::INTEGER AS account_age_days,
    (renewal_date - getvariable('as_of'))::INTEGER AS days_to_renewal
FROM peers;
