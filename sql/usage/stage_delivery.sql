-- Normalise one day's delivery (the registered frame `delivery`) into `staged`: trimmed
-- text, blanks as NULL, timestamps as UTC instants, an event_id for every row, and the
-- first validation failure as `reason` (NULL = valid so far).
-- Variables: partition_date.
CREATE OR REPLACE TEMP TABLE staged AS
WITH json_rows AS (
    SELECT *,
        CASE WHEN json_valid(raw_json) AND json_type(raw_json) = 'OBJECT' THEN raw_json::JSON END AS obj
    FROM delivery
),
delivered AS (
    -- the fields as delivered, from the columns or from the JSON line
    SELECT source_file, source_row, raw_json, ts_value,
        raw_json IS NOT NULL AND obj IS NULL AS malformed,
        CASE WHEN raw_json IS NULL THEN event_id ELSE obj ->> 'event_id' END AS event_id,
        CASE WHEN raw_json IS NULL THEN ts_text ELSE obj ->> 'ts' END AS ts_text,
        CASE WHEN raw_json IS NULL THEN account_id ELSE obj ->> 'account_id' END AS account_id,
        CASE WHEN raw_json IS NULL THEN user_id ELSE obj ->> 'user_id' END AS user_id,
        CASE WHEN raw_json IS NULL THEN module ELSE obj ->> 'module' END AS module,
        CASE WHEN raw_json IS NULL THEN action ELSE obj ->> 'action' END AS action
    FROM json_rows
),
normalised AS (
    SELECT source_file, source_row, malformed,
        nullif(trim(event_id, E' \t\r\n'), '') AS given_event_id,
        coalesce(ts_value, try_cast(nullif(trim(ts_text, E' \t\r\n'), '') AS TIMESTAMPTZ)) AS ts,
        nullif(trim(account_id, E' \t\r\n'), '') AS account_id,
        nullif(trim(user_id, E' \t\r\n'), '') AS user_id,
        nullif(trim(module, E' \t\r\n'), '') AS module,
        nullif(trim(action, E' \t\r\n'), '') AS action,
        -- evidence for rejected_events: the line itself, or the row's fields as delivered
        CASE
            WHEN malformed THEN to_json(raw_json)
            WHEN raw_json IS NOT NULL THEN raw_json::JSON
            ELSE to_json({'event_id': event_id, 'ts': coalesce(ts_text, strftime(ts_value, '%Y-%m-%dT%H:%M:%S.%fZ')),
                          'account_id': account_id, 'user_id': user_id, 'module': module, 'action': action})
        END AS raw
    FROM delivered
)
SELECT
    coalesce(given_event_id, md5(to_json([strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), account_id,
        CASE WHEN contains(user_id, '@') THEN lower(user_id) ELSE user_id END, module, action]))) AS event_id,
    ts,
    CAST(ts AS DATE) AS event_date,
    account_id,
    CASE WHEN contains(user_id, '@') THEN lower(user_id) ELSE user_id END AS user_id,
    module,
    action,
    source_file,
    source_row,
    raw,
    CASE
        WHEN malformed THEN 'malformed_row'
        WHEN account_id IS NULL THEN 'missing_account_id'
        WHEN action IS NULL THEN 'missing_action'
        WHEN ts IS NULL THEN 'bad_timestamp'
        WHEN CAST(ts AS DATE) > getvariable('partition_date') + 1 THEN 'future_timestamp'
    END AS reason
FROM normalised;
