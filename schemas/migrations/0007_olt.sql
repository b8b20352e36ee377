-- OLTs (targets of kind huawei-olt) as polling finds them, and jobs run on them.

-- What the OLT says of itself; one row per OLT target.
CREATE TABLE olt_facts (
    target_id    bigint PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
    product      text,
    version      text,
    patch        text,
    uptime       text,
    inventory_at timestamptz,   -- last full inventory
    autofind_at  timestamptz    -- last autofind poll
);

CREATE TABLE olt_boards (
    target_id bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    frame     integer NOT NULL,
    slot      integer NOT NULL,
    board     text NOT NULL DEFAULT '',
    status    text NOT NULL DEFAULT '',
    subtypes  text NOT NULL DEFAULT '',     -- comma-separated, as the board table shows
    online    text NOT NULL DEFAULT '',
    PRIMARY KEY (target_id, frame, slot)
);

CREATE TABLE pon_ports (
    target_id bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    frame     integer NOT NULL,
    slot      integer NOT NULL,
    port      integer NOT NULL,
    enabled   boolean,                 -- NULL: not known yet
    PRIMARY KEY (target_id, frame, slot, port)
);

CREATE TABLE onts (
    id              bigserial PRIMARY KEY,
    target_id       bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    frame           integer NOT NULL,
    slot            integer NOT NULL,
    port            integer NOT NULL,
    ont_id          integer NOT NULL,
    serial          text NOT NULL,     -- 16 hex digits, upper case (48575443A1B2C3D4)
    serial_vendor   text NOT NULL,     -- vendor form without dash (HWTCA1B2C3D4)
    control_flag    text NOT NULL DEFAULT '',
    run_state       text NOT NULL DEFAULT '',
    config_state    text NOT NULL DEFAULT '',
    match_state     text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    distance_m      integer,
    line_profile    text NOT NULL DEFAULT '',
    service_profile text NOT NULL DEFAULT '',
    last_up         text NOT NULL DEFAULT '',  -- as the OLT prints them (its local time)
    last_down       text NOT NULL DEFAULT '',
    last_down_cause text NOT NULL DEFAULT '',
    first_seen      timestamptz NOT NULL DEFAULT now(),
    updated         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, frame, slot, port, ont_id)
);
CREATE INDEX onts_serial ON onts (serial);
CREATE INDEX onts_serial_vendor ON onts (serial_vendor);
-- The ONT-to-CPE join compares serials whatever their case.
CREATE INDEX devices_serial_upper ON devices (upper(serial_number));

CREATE TABLE ont_autofind (
    target_id        bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    serial           text NOT NULL,
    serial_vendor    text NOT NULL,
    frame            integer NOT NULL,
    slot             integer NOT NULL,
    port             integer NOT NULL,
    password         text NOT NULL DEFAULT '',
    loid             text NOT NULL DEFAULT '',
    vendor_id        text NOT NULL DEFAULT '',
    version          text NOT NULL DEFAULT '',
    software_version text NOT NULL DEFAULT '',
    equipment_id     text NOT NULL DEFAULT '',
    found_at         text NOT NULL DEFAULT '',
    first_seen       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_id, serial)
);

-- On-demand operations, run by the agent that owns the target, one at a time per target.
CREATE TABLE jobs (
    id              bigserial PRIMARY KEY,
    target_id       bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    idempotency_key text UNIQUE,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sent', 'running', 'succeeded', 'failed')),
    agent_id        text,
    progress        jsonb NOT NULL DEFAULT '[]',
    result          jsonb,
    error           text,
    timeout_ms      integer NOT NULL,
    created         timestamptz NOT NULL DEFAULT now(),
    sent            timestamptz,
    deadline        timestamptz,
    finished        timestamptz
);
CREATE INDEX jobs_open ON jobs (target_id, id) WHERE state IN ('queued', 'sent', 'running');
