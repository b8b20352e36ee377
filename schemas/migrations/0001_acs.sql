-- CPE management: devices and their parameter trees, tasks, faults, connection requests,
-- API tokens. Paths use the "C" collation so a subtree is one index range scan.
--
-- Every Inform rewrites its device row (last_inform, the session lease). No index covers
-- those columns and the table leaves free space in each page, so the rewrite is a HOT
-- update that touches no index; `_lastInform` queries scan instead.

CREATE TABLE devices (
    id              text PRIMARY KEY,
    oui             text NOT NULL,
    product_class   text NOT NULL DEFAULT '',
    serial_number   text NOT NULL,
    manufacturer    text NOT NULL DEFAULT '',
    tags            text[] NOT NULL DEFAULT '{}',
    registered      timestamptz NOT NULL DEFAULT now(),
    last_inform     timestamptz,
    last_boot       timestamptz,
    last_bootstrap  timestamptz,
    last_events     text[] NOT NULL DEFAULT '{}',
    -- paths the last Inform carried: their values are as fresh as last_inform
    inform_params   text[] NOT NULL DEFAULT '{}',
    cwmp_version    text,
    -- per-device quirks, e.g. {"xml_declaration": false, "boolean_style": "digit"}
    options         jsonb NOT NULL DEFAULT '{}',
    -- the session lease: one CWMP session per device across every ACS process
    session_id      text,
    session_expires timestamptz
) WITH (fillfactor = 70);
CREATE INDEX devices_tags ON devices USING gin (tags);
CREATE INDEX devices_serial ON devices (serial_number);

CREATE TABLE device_params (
    device_id     text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    path          text COLLATE "C" NOT NULL,   -- objects without the trailing dot
    object        boolean,
    object_ts     timestamptz,
    writable      boolean,
    writable_ts   timestamptz,
    value         text,                        -- lexical form; sealed when secret
    value_type    text,
    value_num     numeric,                     -- numbers, and dateTime as epoch ms
    value_ts      timestamptz,                 -- when the value last came from the CPE
    notification  smallint,
    access_list   text[],
    attributes_ts timestamptz,
    PRIMARY KEY (device_id, path)
) WITH (fillfactor = 80);
-- The number a stored value orders by: integer and decimal types, and dateTime as epoch
-- milliseconds. Values arrive in canonical form (acs.values.canonical), so casts hold.
CREATE FUNCTION cwmp_number(value text, type text) RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN value IS NULL OR left(value, 7) = 'sealed:' THEN NULL
        WHEN type IN ('xsd:int', 'xsd:unsignedInt', 'xsd:long', 'xsd:unsignedLong',
                      'xsd:decimal') THEN value::numeric
        WHEN type = 'xsd:dateTime' THEN round(extract(epoch FROM value::timestamptz) * 1000)
    END
$$;

-- Queries match on (path, value); values can be long, so the index holds a prefix.
CREATE INDEX device_params_value ON device_params (path, left(value, 256));
CREATE INDEX device_params_num ON device_params (path, value_num) WHERE value_num IS NOT NULL;

CREATE TABLE tasks (
    id         bigserial PRIMARY KEY,
    device_id  text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    name       text NOT NULL,
    body       jsonb NOT NULL,                 -- the task as the API received it (secrets masked)
    args       jsonb NOT NULL,                 -- validated arguments the ACS runs (secrets sealed)
    status     text NOT NULL DEFAULT 'pending' -- pending | waiting (transfer) | done | expired
               CHECK (status IN ('pending', 'waiting', 'done', 'expired')),
    created    timestamptz NOT NULL DEFAULT now(),
    expiry     timestamptz,
    retries    integer NOT NULL DEFAULT 0,
    retry_at   timestamptz,
    progress   jsonb NOT NULL DEFAULT '{}',    -- a multi-step task's state between sessions
    result     jsonb,
    completed  timestamptz
);
CREATE INDEX tasks_open ON tasks (device_id, id) WHERE status IN ('pending', 'waiting');

CREATE TABLE faults (
    id         text PRIMARY KEY,               -- '<device id>:<channel>' as GenieACS
    device_id  text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    channel    text NOT NULL,
    task_id    bigint REFERENCES tasks (id) ON DELETE CASCADE,
    code       text NOT NULL,                  -- 'cwmp.9003', 'session.timeout', ...
    message    text NOT NULL,
    detail     jsonb,
    retries    integer NOT NULL DEFAULT 0,
    timestamp  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX faults_device ON faults (device_id);

CREATE TABLE connection_requests (
    id          bigserial PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    url         text NOT NULL,
    ok          boolean NOT NULL,
    http_status integer,
    detail      text NOT NULL DEFAULT '',
    duration_ms integer NOT NULL
);
CREATE INDEX connection_requests_device ON connection_requests (device_id, id DESC);

-- What a session saw that is not a parameter: TransferComplete, Kicked, RequestDownload...
CREATE TABLE device_events (
    id        bigserial PRIMARY KEY,
    device_id text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX device_events_device ON device_events (device_id, id DESC);

CREATE TABLE api_tokens (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    token_hash bytea NOT NULL UNIQUE,          -- sha256 of the token; the token is never stored
    created    timestamptz NOT NULL DEFAULT now(),
    last_used  timestamptz,
    revoked    timestamptz
);
