-- `users`: the contacts of the newest CRM snapshot and every user seen in usage events, one row
-- per account and user; first_seen / last_seen are UTC event days (null until an event)
-- (docs/data-model.md#users). Kept up to date from what changed since the last refresh, never
-- from all history: the pairs whose contact changed (contact_users against user_contacts) and
-- those whose event days changed (user_day_changes, written with usage_user_days). A pair that
-- lost an event day at or beyond first_seen / last_seen is counted again from usage_user_days;
-- for any other, the days added can only widen them. Needs contact_users (contact_users.sql).
-- Variables: run_id.
-- the pairs whose contact came, went or changed its name: both sides hold one row per pair, so a
-- join on the pair finds them (half the cost of EXCEPT both ways, which hashes every column)
CREATE OR REPLACE TEMP TABLE contact_changes AS
SELECT coalesce(k.account_id, u.account_id) AS account_id, coalesce(k.user_id, u.user_id) AS user_id
FROM contact_users k
FULL JOIN user_contacts u ON u.account_id = k.account_id AND u.user_id = k.user_id
WHERE k.user_id IS NULL OR u.user_id IS NULL OR k.name IS DISTINCT FROM u.name;

CREATE OR REPLACE TEMP TABLE user_day_change_totals AS
SELECT account_id, user_id, min(added_first) AS added_first, max(added_last) AS added_last,
    min(removed_first) AS removed_first, max(removed_last) AS removed_last
FROM user_day_changes
GROUP BY account_id, user_id;

CREATE OR REPLACE TEMP TABLE user_candidates AS
SELECT p.account_id, p.user_id, u.first_seen, u.last_seen, t.added_first, t.added_last,
    t.removed_first IS NOT NULL
        AND (u.first_seen IS NULL OR t.removed_first <= u.first_seen OR t.removed_last >= u.last_seen) AS recount
FROM (
    SELECT account_id, user_id FROM contact_changes
    UNION
    SELECT account_id, user_id FROM user_day_change_totals
) p
LEFT JOIN users u ON u.account_id = p.account_id AND u.user_id = p.user_id
LEFT JOIN user_day_change_totals t ON t.account_id = p.account_id AND t.user_id = p.user_id;

CREATE OR REPLACE TEMP TABLE user_recounts AS
SELECT d.account_id, d.user_id, min(d.event_date) AS first_seen, max(d.event_date) AS last_seen
FROM usage_user_days d
SEMI JOIN (SELECT account_id, user_id FROM user_candidates WHERE recount) r
    ON r.account_id = d.account_id AND r.user_id = d.user_id
GROUP BY d.account_id, d.user_id;

DELETE FROM users
WHERE EXISTS (SELECT 1 FROM user_candidates c WHERE c.account_id = users.account_id AND c.user_id = users.user_id);

INSERT INTO users
SELECT account_id, user_id, name, first_seen, last_seen, getvariable('run_id')
FROM (
    SELECT c.account_id, c.user_id, k.name, k.user_id IS NOT NULL AS is_contact,
        CASE WHEN c.recount THEN r.first_seen ELSE least(c.first_seen, c.added_first) END AS first_seen,
        CASE WHEN c.recount THEN r.last_seen ELSE greatest(c.last_seen, c.added_last) END AS last_seen
    FROM user_candidates c
    LEFT JOIN contact_users k ON k.account_id = c.account_id AND k.user_id = c.user_id
    LEFT JOIN user_recounts r ON r.account_id = c.account_id AND r.user_id = c.user_id
)
WHERE is_contact OR first_seen IS NOT NULL;

DELETE FROM user_contacts
WHERE EXISTS (
    SELECT 1 FROM contact_changes c WHERE c.account_id = user_contacts.account_id AND c.user_id = user_contacts.user_id
);
INSERT INTO user_contacts
SELECT * FROM contact_users
WHERE EXISTS (
    SELECT 1 FROM contact_changes c WHERE c.account_id = contact_users.account_id AND c.user_id = contact_users.user_id
);
DELETE FROM user_day_changes;
