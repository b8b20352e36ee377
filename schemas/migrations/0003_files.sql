-- Files CPEs download (firmware, configuration files: PUT /files/{name}) and files CPEs
-- upload (configuration backups, logs), kept in PostgreSQL as rows of ~1 MiB chunks that
-- are written while the body streams in and read back one at a time.

CREATE TABLE files (
    id            bigserial PRIMARY KEY,
    name          text COLLATE "C" NOT NULL,
    -- uploading: being written, seen by no one; current: what `name` serves; replaced
    -- and deleted: kept until transfers that began on them can have finished
    state         text NOT NULL DEFAULT 'uploading'
                  CHECK (state IN ('uploading', 'current', 'replaced', 'deleted')),
    file_type     text NOT NULL DEFAULT '',
    oui           text NOT NULL DEFAULT '',
    product_class text NOT NULL DEFAULT '',
    version       text NOT NULL DEFAULT '',
    length        bigint NOT NULL DEFAULT 0,
    chunk_size    integer NOT NULL CHECK (chunk_size > 0),
    md5           text,
    sha256        text,
    uploaded      timestamptz NOT NULL DEFAULT now(),
    touched       timestamptz NOT NULL DEFAULT now(),  -- last chunk written
    retired       timestamptz                          -- when replaced or deleted
);
-- One current version per name; replacing it is one transaction.
CREATE UNIQUE INDEX files_current ON files (name) WHERE state = 'current';
CREATE INDEX files_retired ON files (retired) WHERE state <> 'current';

CREATE TABLE file_chunks (
    file_id bigint NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq     integer NOT NULL,        -- every chunk but the last holds chunk_size bytes
    data    bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);
-- Images are compressed already; uncompressed out-of-line storage lets a Range read
-- fetch only the slice it needs (substring on an EXTERNAL value reads just those pages).
ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE device_uploads (
    id           bigserial PRIMARY KEY,
    device_id    text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    task_id      bigint REFERENCES tasks (id) ON DELETE SET NULL,
    file_type    text NOT NULL,                -- "1 Vendor Configuration File", ...
    filename     text NOT NULL DEFAULT '',     -- the name a multipart POST gave, if any
    content_type text NOT NULL DEFAULT 'application/octet-stream',
    state        text NOT NULL DEFAULT 'uploading' CHECK (state IN ('uploading', 'complete')),
    length       bigint NOT NULL DEFAULT 0,
    chunk_size   integer NOT NULL CHECK (chunk_size > 0),
    sealed       boolean NOT NULL DEFAULT false, -- chunks sealed (backups hold credentials)
    md5          text,
    sha256       text,
    created      timestamptz NOT NULL DEFAULT now(),
    touched      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_uploads_device ON device_uploads (device_id, id DESC);
CREATE INDEX device_uploads_unfinished ON device_uploads (touched) WHERE state = 'uploading';

CREATE TABLE device_upload_chunks (
    upload_id bigint NOT NULL REFERENCES device_uploads (id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
ALTER TABLE device_upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The transfer-timeout sweep looks only at tasks waiting for a TransferComplete.
CREATE INDEX tasks_waiting ON tasks (id) WHERE status = 'waiting';
