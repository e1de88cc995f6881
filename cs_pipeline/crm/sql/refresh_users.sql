-- `users`: the contacts of the newest CRM snapshot and every user seen in usage events, one
-- row per account and user; first_seen / last_seen are UTC event days (null until an event).
-- Variables: run_id.
CREATE OR REPLACE TEMP TABLE contact_users AS
WITH newest AS (SELECT max(snapshot_date) AS snapshot_date FROM crm_contacts_raw),
contacts AS (
    SELECT a.account_id,
        CASE WHEN contains(c.user_id, '@') THEN lower(c.user_id) ELSE c.user_id END AS user_id,
        c.name, c.system_modstamp, c.salesforce_id
    FROM crm_contacts_raw c
    JOIN crm_accounts_raw a
      ON a.snapshot_date = c.snapshot_date AND a.salesforce_id = c.account_salesforce_id
    WHERE c.snapshot_date = (SELECT snapshot_date FROM newest)
)
-- one name per user: the latest-modified contact, as with duplicate accounts
SELECT account_id, user_id, arg_max(name, (coalesce(system_modstamp, ''), salesforce_id)) AS name
FROM contacts
WHERE user_id IS NOT NULL AND account_id IS NOT NULL
GROUP BY account_id, user_id;

DELETE FROM users;
INSERT INTO users
SELECT account_id, user_id, c.name, e.first_seen, e.last_seen, getvariable('run_id')
FROM contact_users c
FULL JOIN (
    SELECT account_id, user_id, min(event_date) AS first_seen, max(event_date) AS last_seen
    FROM usage_user_days
    GROUP BY account_id, user_id
) e USING (account_id, user_id);
