-- Accounts that turned Poor on the latest day (they were Good or Average the day before), and why.
SELECT h.account_id, a.name, h.profile, h.previous_health, h.reasons
FROM account_health h
LEFT JOIN accounts a USING (account_id)
WHERE h.date = (SELECT max(date) FROM account_health)
  AND h.health = 'Poor' AND h.previous_health IN ('Good', 'Average')
ORDER BY h.profile, h.account_id
LIMIT 20;
