-- A backtest replaces the rows of its own (start, end, horizon) in {output}, and only those.
DELETE FROM {output}.health_backtest t USING backtest_identity i
WHERE t."start" = i."start" AND t."end" = i."end" AND t.horizon = i.horizon;
DELETE FROM {output}.health_backtest_churns t USING backtest_identity i
WHERE t."start" = i."start" AND t."end" = i."end" AND t.horizon = i.horizon;
DELETE FROM {output}.health_backtest_rules t USING backtest_identity i
WHERE t."start" = i."start" AND t."end" = i."end" AND t.horizon = i.horizon;
