-- contact_users: the contacts of the newest CRM snapshot (its versions still open), one per
-- account and user, as users shows them (docs/data-model.md#users).
CREATE OR REPLACE TEMP TABLE contact_users AS
WITH contacts AS (
    SELECT a.account_id,
        CASE WHEN contains(c.user_id, '@') THEN lower(c.user_id) ELSE c.user_id END AS user_id,
        c.name, c.system_modstamp, c.salesforce_id
    FROM crm_contact_versions c
    JOIN crm_account_versions a ON a.salesforce_id = c.account_salesforce_id
    WHERE c.valid_to IS NULL AND a.valid_to IS NULL
)
-- one name per user: the latest-modified contact, as with duplicate accounts
SELECT account_id, user_id, arg_max(name, (coalesce(system_modstamp, ''), salesforce_id)) AS name
FROM contacts
WHERE user_id IS NOT NULL AND account_id IS NOT NULL
GROUP BY account_id, user_id;
