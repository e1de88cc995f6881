-- When a day delivered earlier is materialised later, the values it brings first can push
-- values of later days beyond the per-tenant limits: those stored events move to
-- rejected_events, as they would have been rejected had the days run in order.
-- Runs only when the tenant's vocabulary exceeds a limit. Variables: run_id.
CREATE OR REPLACE TEMP TABLE beyond_limits AS
SELECT e.*,
    CASE WHEN e.module IS NOT NULL AND m.value IS NULL THEN 'module_limit' ELSE 'action_limit' END AS reason
FROM usage_events e
LEFT JOIN (SELECT value FROM allowed_vocabulary WHERE kind = 'module') m ON e.module = m.value
LEFT JOIN (SELECT value FROM allowed_vocabulary WHERE kind = 'action') a ON e.action = a.value
WHERE (e.module IS NOT NULL AND m.value IS NULL) OR a.value IS NULL;

INSERT INTO rejected_events
SELECT partition_date, source_file, source_row, reason,
    to_json({'event_id': event_id, 'ts': strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), 'account_id': account_id,
             'user_id': user_id, 'module': module, 'action': action}),
    getvariable('run_id')
FROM beyond_limits;

DELETE FROM usage_events WHERE event_id IN (SELECT event_id FROM beyond_limits);
