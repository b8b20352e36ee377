-- The agent fleet: what is polled (targets), who polls (agents, with leases renewed by
-- heartbeats), and who polls what (assignments, with epochs).

-- Agents authenticate with API tokens of their own role.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'operator', 'viewer', 'agent'));

CREATE TABLE targets (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('snmp', 'huawei-olt', 'padtec')),
    address     text NOT NULL,
    port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    credentials text NOT NULL DEFAULT '',      -- sealed JSON; never returned in full
    labels      jsonb NOT NULL DEFAULT '{}',    -- zone, vendor, tenant, ...
    profile     jsonb NOT NULL DEFAULT '{}',    -- poll groups and their intervals
    enabled     boolean NOT NULL DEFAULT true,
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX targets_zone ON targets ((labels ->> 'zone'));

CREATE TABLE agents (
    id            text PRIMARY KEY,
    boot          text NOT NULL,               -- the process now connected; seqs restart with it
    labels        jsonb NOT NULL DEFAULT '{}',
    capacity      integer NOT NULL,
    kinds         text[] NOT NULL,
    software      text NOT NULL DEFAULT '',
    controller    text,                        -- the controller holding its stream
    connected     timestamptz,
    last_seen     timestamptz,
    lease_expires timestamptz                  -- alive while this is in the future
) WITH (fillfactor = 70);

-- Epochs number every assignment the leader makes, fleet-wide and increasing.
CREATE SEQUENCE assignment_epoch;

CREATE TABLE assignments (
    target_id bigint PRIMARY KEY REFERENCES targets (id) ON DELETE CASCADE,
    agent_id  text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    epoch     bigint NOT NULL,
    state     text NOT NULL CHECK (state IN ('active', 'revoking')),
    since     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_agent ON assignments (agent_id);

-- Reports already stored, per agent process: a resent report is recognised and skipped.
CREATE TABLE agent_reports (
    agent_id text NOT NULL,
    boot     text NOT NULL,
    seq      bigint NOT NULL,
    stored   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, boot, seq)
);
