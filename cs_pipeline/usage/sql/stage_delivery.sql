-- Normalise one day's delivery (the registered frame `delivery`) into `staged`: trimmed
-- text, blanks as NULL, timestamps as UTC instants, an event_id for every row, the first
-- validation failure as `reason` (NULL = valid so far). What was delivered is read back
-- from `delivery` (by source_file, source_row) for the rejected rows only, into
-- `rejected_as_delivered`: the caller then releases the delivery's memory.
-- Bounds (docs/hostile-input.md#bounds): in a JSON Lines row the text fields are
-- JSON strings (else `bad_type`); no ID, module or action is longer than
-- `field_length_limit` characters (else `field_too_long`).
-- Variables: partition_date, field_length_limit.
-- Trimmed text, a blank as NULL; trims only when an end is whitespace (most values are clean).
CREATE OR REPLACE TEMP MACRO clean_text(s) AS
    CASE WHEN s[1] <= ' ' OR s[-1] <= ' ' THEN nullif(trim(s, E' \t\r\n'), '') ELSE s END;

-- A valid event as rejected_events evidence (a limit rejection): its normalised fields,
-- from which the event is re-admitted exactly if the limits change.
CREATE OR REPLACE TEMP MACRO event_evidence(event_id, ts, account_id, user_id, module, action) AS
    to_json({'event_id': event_id, 'ts': strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), 'account_id': account_id,
             'user_id': user_id, 'module': module, 'action': action});

-- A JSON Lines line as text: NULL when its bytes are not UTF-8 (a carriage return ending it is dropped).
CREATE OR REPLACE TEMP MACRO line_text(raw_line) AS rtrim(try(decode(raw_line)), E'\r');

CREATE OR REPLACE TEMP TABLE staged AS
WITH json_rows AS (
    SELECT * EXCLUDE (raw_line), raw_line IS NOT NULL AS from_json_line, line_text(raw_line) AS raw_json,
        CASE WHEN json_valid(raw_json) AND json_type(raw_json) = 'OBJECT' THEN raw_json::JSON END AS obj
    FROM delivery
),
delivered AS (
    -- the fields as delivered, from the columns or from the JSON line
    SELECT source_file, source_row, ts_value,
        from_json_line AND obj IS NULL AS malformed,
        len(list_filter(json_type(obj, ['event_id', 'account_id', 'user_id', 'module', 'action']),
                        lambda t: t NOT IN ('VARCHAR', 'NULL'))) > 0 AS bad_type,
        CASE WHEN raw_json IS NULL THEN event_id ELSE obj ->> 'event_id' END AS event_id,
        CASE WHEN raw_json IS NULL THEN ts_text ELSE obj ->> 'ts' END AS ts_text,
        CASE WHEN raw_json IS NULL THEN account_id ELSE obj ->> 'account_id' END AS account_id,
        CASE WHEN raw_json IS NULL THEN user_id ELSE obj ->> 'user_id' END AS user_id,
        CASE WHEN raw_json IS NULL THEN module ELSE obj ->> 'module' END AS module,
        CASE WHEN raw_json IS NULL THEN action ELSE obj ->> 'action' END AS action
    FROM json_rows
),
timestamps AS (
    -- ISO 8601 only: DuckDB would also read words such as 'epoch' or 'infinity'
    SELECT *, clean_text(ts_text) AS trimmed_ts,
        regexp_matches(clean_text(ts_text), '^\d{4}-\d{2}-\d{2}') AS iso_date_prefix
    FROM delivered
),
normalised AS (
    SELECT source_file, source_row, ts_value, ts_text, malformed, bad_type,
        clean_text(event_id) AS given_event_id,
        coalesce(ts_value, CASE WHEN iso_date_prefix THEN try_cast(trimmed_ts AS TIMESTAMPTZ) END) AS ts,
        clean_text(account_id) AS account_id,
        clean_text(user_id) AS user_id,
        clean_text(module) AS module,
        clean_text(action) AS action
    FROM timestamps
),
validated AS (
    SELECT *,
        CASE
            WHEN malformed THEN 'malformed_row'
            WHEN bad_type THEN 'bad_type'
            WHEN greatest(length(given_event_id), length(account_id), length(user_id), length(module),
                          length(action)) > getvariable('field_length_limit') THEN 'field_too_long'
            WHEN account_id IS NULL THEN 'missing_account_id'
            WHEN action IS NULL THEN 'missing_action'
            WHEN ts IS NULL THEN 'bad_timestamp'
            WHEN CAST(ts AS DATE) > getvariable('partition_date') + 1 THEN 'future_timestamp'
        END AS reason
    FROM normalised
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
    reason
FROM validated;

-- The evidence of a row rejected here (rejected_events.raw): the row as delivered. A JSON
-- Lines line that is not UTF-8 is kept as text with each byte outside printable ASCII
-- written as \xNN (DuckDB's text form of bytes), quotes shown as quotes.
CREATE OR REPLACE TEMP TABLE rejected_as_delivered AS
SELECT source_file, source_row,
    CASE
        WHEN d.raw_line IS NOT NULL AND line_text(d.raw_line) IS NULL
            THEN to_json(replace(d.raw_line::VARCHAR, '\x22', '"'))
        WHEN s.reason = 'malformed_row' THEN to_json(line_text(d.raw_line))
        WHEN d.raw_line IS NOT NULL THEN line_text(d.raw_line)::JSON
        ELSE to_json({'event_id': d.event_id, 'ts': coalesce(d.ts_text, strftime(d.ts_value, '%Y-%m-%dT%H:%M:%S.%fZ')),
                      'account_id': d.account_id, 'user_id': d.user_id, 'module': d.module, 'action': d.action})
    END AS raw
FROM (SELECT source_file, source_row, reason FROM staged WHERE reason IS NOT NULL) s
JOIN delivery d USING (source_file, source_row);
