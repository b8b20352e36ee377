-- Time series: what agents measure (controller/ingest.py writes it, controller/timeseries.py
-- keeps it, controller/series_api.py reads it). Needs PostgreSQL 14 or newer (date_bin,
-- range_agg, DETACH PARTITION ... CONCURRENTLY).
--
-- samples and its rollups are partitioned by time: samples and samples_5m by UTC day,
-- samples_1h and events by month, samples_1d by year. Partitions are created by the code
-- (ahead of need by maintenance, and before a write that needs one), never here, and
-- retention drops whole partitions. There is no DEFAULT partition: a write never lands in
-- a catch-all that would have to be emptied later, and partitions can be detached
-- concurrently. Partitions are named <table>_p<YYYYMMDD|YYYYMM|YYYY> (their first day).

-- One series per (target, metric, labels); labels compare as JSON (key order is moot).
CREATE TABLE series (
    id        bigserial PRIMARY KEY,
    target_id bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    metric    text NOT NULL,
    labels    jsonb NOT NULL DEFAULT '{}',
    created   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, metric, labels)
);
CREATE INDEX series_metric ON series (metric);

-- Raw samples: one per series and instant, so a resent sample is stored once. No foreign
-- key to series (it would cost a lookup per row of every COPY): samples of a deleted
-- series are unreachable and leave with their partition.
CREATE TABLE samples (
    series_id bigint NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (series_id, ts)
) PARTITION BY RANGE (ts);
-- Rows arrive in time order, so a BRIN index finds a time range (what rollups read) for
-- the price of a few pages.
CREATE INDEX samples_ts ON samples USING brin (ts);

-- Rollups: one row per series and bucket (its start). sum and count rather than avg, so
-- coarser rollups and any step are computed exactly from finer ones; avg = sum / count.
CREATE TABLE samples_5m (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    sum       double precision NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (series_id, bucket)
) PARTITION BY RANGE (bucket);
CREATE INDEX samples_5m_bucket ON samples_5m USING brin (bucket);

CREATE TABLE samples_1h (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    sum       double precision NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (series_id, bucket)
) PARTITION BY RANGE (bucket);
CREATE INDEX samples_1h_bucket ON samples_1h USING brin (bucket);

CREATE TABLE samples_1d (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    sum       double precision NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (series_id, bucket)
) PARTITION BY RANGE (bucket);
CREATE INDEX samples_1d_bucket ON samples_1d USING brin (bucket);

-- What polls saw that is not a number (a target unreachable, a trap, a log line).
CREATE TABLE events (
    target_id bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    ts        timestamptz NOT NULL,
    kind      text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}',
    agent_id  text NOT NULL,
    received  timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);
CREATE INDEX events_target_ts ON events (target_id, ts);

-- Reports already stored (0005) also say when they were written (xid: the transaction,
-- compared with the snapshot of the last rollup run to find samples that arrived after
-- their buckets were rolled up) and the time span of their samples.
ALTER TABLE agent_reports
    ADD COLUMN xid    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN min_ts timestamptz,
    ADD COLUMN max_ts timestamptz;
CREATE INDEX agent_reports_stored ON agent_reports (stored);
CREATE INDEX agent_reports_xid ON agent_reports (xid) WHERE min_ts IS NOT NULL;

-- Rollup progress (one row): buckets before done_* are computed; reports visible in
-- `seen` were rolled up by the last maintenance run.
CREATE TABLE timeseries_state (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    done_5m  timestamptz,
    done_1h  timestamptz,
    done_1d  timestamptz,
    seen     pg_snapshot,
    last_run timestamptz
);
INSERT INTO timeseries_state DEFAULT VALUES;
