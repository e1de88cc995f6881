-- Custom metric `escalations`: tickets escalated in the 30 days ending $as_of, per account.
-- Reads the view metric_events (events known at the end of $as_of) and returns
-- (account_id, value); accounts with no escalation are not returned, so they have no value.
SELECT account_id, count(*)::DOUBLE AS value
FROM metric_events
WHERE action = 'Escalate ticket'
  AND event_date BETWEEN CAST($as_of AS DATE) - 29 AND CAST($as_of AS DATE)
GROUP BY account_id
