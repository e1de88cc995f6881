-- One account's health and the metrics behind it over its last 14 days (pick any account_id).
SELECT h.date, h.profile, h.health, h.health_score, m.usage_frequency, m.engagement_score,
    m.active_users_30d, m.license_utilization, h.reasons
FROM account_health h
JOIN account_metrics m USING (date, account_id)
WHERE h.account_id = (SELECT min(account_id) FROM account_health WHERE health = 'Poor')
ORDER BY h.date DESC
LIMIT 14;
