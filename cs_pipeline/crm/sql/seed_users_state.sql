-- Schema upgrade (migrations.py): the state the incremental users refresh starts from. users was
-- rebuilt from all history by each run; the rows where it differs from such a rebuild now (a
-- retention purge or a CRM snapshot after the last users run) go to user_day_changes, so that
-- the next refresh writes what a rebuild would. Needs contact_users (contact_users.sql).
INSERT INTO user_contacts SELECT * FROM contact_users;

INSERT INTO user_day_changes
WITH rebuilt AS (
    SELECT coalesce(c.account_id, e.account_id) AS account_id, coalesce(c.user_id, e.user_id) AS user_id,
        c.name, e.first_seen, e.last_seen
    FROM contact_users c
    FULL JOIN (
        SELECT account_id, user_id, min(event_date) AS first_seen, max(event_date) AS last_seen
        FROM usage_user_days
        GROUP BY account_id, user_id
    ) e ON e.account_id = c.account_id AND e.user_id = c.user_id
)
SELECT coalesce(r.account_id, u.account_id), coalesce(r.user_id, u.user_id),
    r.first_seen, r.last_seen, u.first_seen, u.last_seen
FROM rebuilt r
FULL JOIN users u ON u.account_id = r.account_id AND u.user_id = r.user_id
WHERE r.account_id IS NULL OR u.account_id IS NULL OR r.name IS DISTINCT FROM u.name
   OR r.first_seen IS DISTINCT FROM u.first_seen OR r.last_seen IS DISTINCT FROM u.last_seen;
