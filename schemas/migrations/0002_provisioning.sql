-- Provisioning: presets select provisions (declarative documents, never code) for each
-- session; virtual parameters derive values; device classes carry per-model quirks.

-- When an object's children (children_ts) or its whole subtree (subtree_ts) were last
-- listed by GetParameterNames: what "refresh this object" declarations compare against.
ALTER TABLE device_params ADD COLUMN children_ts timestamptz, ADD COLUMN subtree_ts timestamptz;

CREATE TABLE presets (
    name     text PRIMARY KEY,
    document jsonb NOT NULL,          -- as the API received it (GenieACS shape)
    updated  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE provisions (
    name     text PRIMARY KEY,
    source   text NOT NULL,           -- the JSON or YAML text as uploaded
    document jsonb NOT NULL,          -- its steps, parsed and validated
    updated  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE virtual_parameters (
    name     text PRIMARY KEY,
    source   text NOT NULL,
    document jsonb NOT NULL,
    updated  timestamptz NOT NULL DEFAULT now()
);

-- Quirk settings per device model; a device's own options override its class's.
CREATE TABLE device_classes (
    oui           text NOT NULL,
    product_class text NOT NULL DEFAULT '',   -- '' applies to every class of the OUI
    options       jsonb NOT NULL,
    updated       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (oui, product_class)
);

-- What every installation starts with: discover a new device's whole tree, and give
-- every device connection-request credentials the ACS knows (as GenieACS does).
INSERT INTO presets (name, document) VALUES
    ('bootstrap', '{"channel": "bootstrap", "weight": 0, "events": {"0 BOOTSTRAP": true},
                    "precondition": {}, "provisions": [["bootstrap"]]}'),
    ('inform', '{"channel": "inform", "weight": 0, "events": {"1 BOOT": true},
                 "precondition": {}, "provisions": [["inform"]]}');
