-- Health by profile on the latest day: how many accounts are Good, Average, Poor or No value.
SELECT profile, health, count(*) AS accounts, round(avg(health_score), 1) AS mean_score
FROM account_health
WHERE date = (SELECT max(date) FROM account_health)
GROUP BY profile, health
ORDER BY profile, health;
