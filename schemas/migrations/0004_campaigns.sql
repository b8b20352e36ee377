-- Bulk operations and firmware campaigns (controller/campaigns.py).
--
-- A campaign is a device query, a list of actions (task templates) run in order on every
-- device, waves, a concurrency limit, a success criterion and a failure ratio that halts
-- it. Its device set is frozen into campaign_devices when it starts; from then on the
-- engine (one controller at a time) moves each device through
-- waiting -> queued -> running -> succeeded | failed, or to skipped when it never started.
-- Every state lives here, so a restarted or different controller carries on.

CREATE TABLE campaigns (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    definition    jsonb NOT NULL,              -- the validated spec (schemas.campaigns)
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'paused', 'halted', 'cancelled',
                                   'completed')),
    state_reason  text NOT NULL DEFAULT '',
    created_by    text NOT NULL,               -- the API token's name
    created       timestamptz NOT NULL DEFAULT now(),
    start_at      timestamptz,                 -- not before; NULL: at once
    started       timestamptz,                 -- when the device set was frozen
    finished      timestamptz,                 -- completed, or settled after halt/cancel
    updated       timestamptz NOT NULL DEFAULT now(),
    wave_sizes    integer[] NOT NULL DEFAULT '{}',
    current_wave  integer NOT NULL DEFAULT 0,
    next_wave_at  timestamptz,                 -- a wave delay: the next wave not before
    -- devices per state, kept by the engine in the transaction that moves them
    total         integer NOT NULL DEFAULT 0,
    waiting       integer NOT NULL DEFAULT 0,
    queued        integer NOT NULL DEFAULT 0,
    running       integer NOT NULL DEFAULT 0,
    succeeded     integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,
    skipped       integer NOT NULL DEFAULT 0
);
-- What the engine looks at each round: campaigns that may still start or finish devices.
CREATE INDEX campaigns_active ON campaigns (id)
    WHERE state IN ('pending', 'running') OR queued + running > 0;

CREATE TABLE campaign_devices (
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- no foreign key: the outcome stays on record when the device is deleted
    device_id     text NOT NULL,
    seq           integer NOT NULL,            -- start order within the campaign, from 1
    wave          integer NOT NULL,            -- from 0
    state         text NOT NULL DEFAULT 'waiting'
                  CHECK (state IN ('waiting', 'queued', 'running', 'succeeded', 'failed',
                                   'skipped')),
    step          integer NOT NULL DEFAULT 0,  -- the action being run (index into actions)
    task_ids      bigint[] NOT NULL DEFAULT '{}',  -- every task queued for it, in order
    detail        jsonb,                       -- the outcome: reason, fault, ...
    queued_at     timestamptz,
    started_at    timestamptz,
    tasks_done_at timestamptz,                 -- all steps done; the criterion is awaited
    finished_at   timestamptz,
    PRIMARY KEY (campaign_id, device_id)
);
CREATE UNIQUE INDEX campaign_devices_seq ON campaign_devices (campaign_id, seq);
CREATE INDEX campaign_devices_next ON campaign_devices (campaign_id, wave, seq)
    WHERE state = 'waiting';
CREATE INDEX campaign_devices_in_flight ON campaign_devices (campaign_id)
    WHERE state IN ('queued', 'running');

-- What happened to a campaign and who did it: created, started, paused, halted, ...
CREATE TABLE campaign_events (
    id          bigserial PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    actor       text NOT NULL DEFAULT '',      -- a token name, or 'engine'
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX campaign_events_campaign ON campaign_events (campaign_id, id);
