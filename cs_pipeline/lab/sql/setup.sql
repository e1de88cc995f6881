-- Run after the variables are set: backtest_start, backtest_end, backtest_horizon,
-- backtest_config_sha256, backtest_run_id.
-- Rates and lifts as docs/health-lab.md#tables defines them: DOUBLE, unrounded, null where
-- undefined (no days; a base rate that is null or zero), 0 for a rate of 0 over a positive base.
CREATE OR REPLACE TEMP MACRO backtest_rate(positive_days, days) AS
    CAST(positive_days AS DOUBLE) / nullif(days, 0);
CREATE OR REPLACE TEMP MACRO backtest_lift(rate, base_rate) AS
    rate / nullif(base_rate, 0);
-- the horizon as an INTEGER, which DATE arithmetic takes (a variable set from Python is a BIGINT)
CREATE OR REPLACE TEMP MACRO backtest_horizon() AS CAST(getvariable('backtest_horizon') AS INTEGER);

-- the columns that say which backtest wrote a row, on every row of the three tables
CREATE OR REPLACE TEMP TABLE backtest_identity AS
SELECT getvariable('backtest_start') AS "start", getvariable('backtest_end') AS "end",
    backtest_horizon() AS horizon, getvariable('backtest_config_sha256') AS config_sha256,
    getvariable('backtest_run_id') AS run_id;
