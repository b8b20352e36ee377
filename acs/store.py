"""PostgreSQL side of CWMP sessions: the device row and lease, the parameter tree, tasks.

A session touches only the rows its messages name: an Inform upserts its own parameters,
a GetParameterValuesResponse the values it carries. Every write of a session happens
under its lease (`devices.session_id`), checked in the same transaction, so a session
that lost its lease (it stalled past its timeout and another began) writes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from acs import messages as m
from acs import session as s
from acs import tree
from acs import values as v
from acs.batch import Batcher
from acs.planner import ChannelFault
from acs.provisioning import DeviceSnapshot, LoadSpec, QueuedTask
from acs.tasks import TaskRecord, task_id_from_key
from schemas.sealing import Sealer, is_secret_path

log = logging.getLogger("chronos.acs.store")

# Informs of many devices are stored by one statement (acs.batch); each device row is
# taken only if its lease is free, and its parameters are written only then, and only
# those whose value changed (an unchanged value is as fresh as last_inform: see
# inform_params). Inform bookkeeping the CPE repeats at its next Inform (periodic and
# connection-request sessions carry only forced parameters) is committed without waiting
# for the WAL flush; anything else (BOOT, VALUE CHANGE, ...) waits as usual. A row lock
# held elsewhere fails the batch after lock_timeout rather than stalling every Inform;
# the batcher then retries its devices one by one.
BEGIN_SESSIONS = """
WITH sync AS (
    SELECT set_config('synchronous_commit', CASE WHEN $16 THEN 'on' ELSE 'off' END, true),
           set_config('lock_timeout', '2s', true)
), input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::boolean[], $8::boolean[], $9::text[], $10::text[],
                         $11::int[], $12::text[])
        AS i(id, oui, product_class, serial_number, manufacturer, events, boot, bootstrap,
             cwmp_version, session_id, lease, paths)
), dev AS (
    INSERT INTO devices AS d (id, oui, product_class, serial_number, manufacturer, last_inform,
                              last_boot, last_bootstrap, last_events, cwmp_version,
                              inform_params, session_id, session_expires)
    SELECT i.id, i.oui, i.product_class, i.serial_number, i.manufacturer, now(),
           CASE WHEN i.boot THEN now() END, CASE WHEN i.bootstrap THEN now() END,
           string_to_array(i.events, E'\x1f'), i.cwmp_version,
           string_to_array(i.paths, E'\x1f'), i.session_id,
           now() + make_interval(secs => i.lease)
    FROM input i ORDER BY i.id
    ON CONFLICT (id) DO UPDATE SET
        oui = EXCLUDED.oui, product_class = EXCLUDED.product_class,
        serial_number = EXCLUDED.serial_number, manufacturer = EXCLUDED.manufacturer,
        last_inform = EXCLUDED.last_inform,
        last_boot = COALESCE(EXCLUDED.last_boot, d.last_boot),
        last_bootstrap = COALESCE(EXCLUDED.last_bootstrap, d.last_bootstrap),
        last_events = EXCLUDED.last_events, cwmp_version = EXCLUDED.cwmp_version,
        inform_params = EXCLUDED.inform_params,
        session_id = EXCLUDED.session_id, session_expires = EXCLUDED.session_expires
    WHERE d.session_id IS NULL OR d.session_expires < now()
    RETURNING d.id, d.options
), changed AS (
    SELECT u.* FROM unnest($13::text[], $14::text[], $15::text[], $17::text[])
        AS u(device_id, path, value, type)
    JOIN dev ON dev.id = u.device_id
    WHERE NOT EXISTS (
        SELECT 1 FROM device_params x
        WHERE x.device_id = u.device_id AND x.path = u.path AND x.object = false
          AND x.value IS NOT DISTINCT FROM u.value AND x.value_type = u.type
    )
), params AS (
    INSERT INTO device_params AS p (device_id, path, object, object_ts,
                                    value, value_type, value_num, value_ts)
    SELECT c.device_id, c.path, false, now(), c.value, c.type, cwmp_number(c.value, c.type),
           now()
    FROM changed c ORDER BY c.device_id, c.path
    ON CONFLICT (device_id, path) DO UPDATE SET
        object = false, object_ts = EXCLUDED.object_ts,
        value = CASE WHEN EXCLUDED.value = '' AND left(p.value, 7) = 'sealed:' THEN p.value
                     ELSE EXCLUDED.value END,
        value_type = EXCLUDED.value_type, value_num = EXCLUDED.value_num,
        value_ts = EXCLUDED.value_ts
)
SELECT dev.id, dev.options FROM dev, sync
"""

# The first look at a session's tasks, for many sessions at once. A device with none
# gets its lease released in the same statement, so a periodic session costs no extra
# round trip to end. The lease is soft state: no need to wait for the WAL flush.
FIRST_TASKS = """
WITH sync AS (
    SELECT set_config('synchronous_commit', 'off', true), set_config('lock_timeout', '2s', true)
), req AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) AS r(device_id, session_id, lease)
), open AS (
    SELECT t.device_id,
           json_agg(json_build_object('id', t.id, 'name', t.name, 'args', t.args,
                                      'progress', t.progress, 'retries', t.retries)
                    ORDER BY t.id) AS tasks
    FROM tasks t JOIN req r ON r.device_id = t.device_id
    WHERE t.status = 'pending' AND (t.retry_at IS NULL OR t.retry_at <= now())
      AND (t.expiry IS NULL OR t.expiry > now())
    GROUP BY t.device_id
), lease AS (
    UPDATE devices d SET
        session_id = CASE WHEN x.tasks IS NULL THEN NULL ELSE d.session_id END,
        session_expires = CASE WHEN x.tasks IS NULL THEN NULL
                               ELSE now() + make_interval(secs => x.lease) END
    FROM (SELECT r.device_id, r.session_id, r.lease, o.tasks
          FROM req r LEFT JOIN open o ON o.device_id = r.device_id) AS x
    WHERE d.id = x.device_id AND d.session_id = x.session_id
    RETURNING d.id
)
SELECT r.device_id, l.id IS NOT NULL AS held, COALESCE(o.tasks, '[]'::json) AS tasks
FROM req r LEFT JOIN open o ON o.device_id = r.device_id
           LEFT JOIN lease l ON l.id = r.device_id, sync
"""

# Open tasks a session may still run (not yet tried in it); with none left, the lease is
# released in the same statement. `held` says whether the lease was still ours.
FETCH_TASKS = """
WITH sync AS (
    SELECT set_config('synchronous_commit', 'off', true)
), open AS (
    SELECT id, name, args, progress, retries FROM tasks
    WHERE device_id = $1 AND status = 'pending'
      AND (retry_at IS NULL OR retry_at <= now())
      AND (expiry IS NULL OR expiry > now())
      AND id <> ALL($3::bigint[])
    ORDER BY id
    LIMIT 100
), lease AS (
    UPDATE devices SET
        session_id = CASE WHEN EXISTS (SELECT 1 FROM open) THEN session_id END,
        session_expires = CASE WHEN EXISTS (SELECT 1 FROM open)
                               THEN now() + make_interval(secs => $4) END
    WHERE id = $1 AND session_id = $2
    RETURNING 1
)
SELECT (SELECT count(*) FROM lease) AS held,
       COALESCE((SELECT json_agg(open ORDER BY id) FROM open), '[]'::json) AS tasks
FROM sync
"""

EXTEND_LEASE = """
UPDATE devices SET session_expires = now() + make_interval(secs => $3)
WHERE id = $1 AND session_id = $2
RETURNING 1
"""

RELEASE_LEASE = """
UPDATE devices SET session_id = NULL, session_expires = NULL
WHERE id = $1 AND session_id = $2
"""

UPSERT_VALUES = """
INSERT INTO device_params AS p (device_id, path, object, object_ts,
                                value, value_type, value_num, value_ts)
SELECT $1, u.path, false, now(), u.value, u.type, cwmp_number(u.value, u.type), now()
FROM unnest($2::text[], $3::text[], $4::text[]) AS u(path, value, type)
ON CONFLICT (device_id, path) DO UPDATE SET
    object = false, object_ts = EXCLUDED.object_ts,
    -- A CPE reads a credential back as "": keep the one we set (it is sealed).
    value = CASE WHEN EXCLUDED.value = '' AND left(p.value, 7) = 'sealed:' THEN p.value
                 ELSE EXCLUDED.value END,
    value_type = EXCLUDED.value_type, value_num = EXCLUDED.value_num,
    value_ts = EXCLUDED.value_ts
"""

# Objects whose children (and, deep, whole subtree) a GetParameterNames listed.
UPSERT_ENUMERATED = """
INSERT INTO device_params AS p (device_id, path, object, object_ts, children_ts, subtree_ts)
SELECT $1, u.path, true, now(), now(), CASE WHEN u.deep THEN now() END
FROM unnest($2::text[], $3::boolean[]) AS u(path, deep)
ON CONFLICT (device_id, path) DO UPDATE SET
    object = true, children_ts = now(),
    subtree_ts = CASE WHEN EXCLUDED.subtree_ts IS NOT NULL THEN now() ELSE p.subtree_ts END
"""

UPSERT_NODES = """
INSERT INTO device_params AS p (device_id, path, object, object_ts, writable, writable_ts)
SELECT $1, u.path, u.object, now(), u.writable, now()
FROM unnest($2::text[], $3::boolean[], $4::boolean[]) AS u(path, object, writable)
ON CONFLICT (device_id, path) DO UPDATE SET
    object = EXCLUDED.object, object_ts = EXCLUDED.object_ts,
    writable = EXCLUDED.writable, writable_ts = EXCLUDED.writable_ts
"""

UPSERT_ATTRIBUTES = """
INSERT INTO device_params AS p (device_id, path, notification, access_list, attributes_ts)
SELECT $1, u.path, u.notification, string_to_array(NULLIF(u.acl, ''), ','), now()
FROM unnest($2::text[], $3::smallint[], $4::text[]) AS u(path, notification, acl)
ON CONFLICT (device_id, path) DO UPDATE SET
    notification = EXCLUDED.notification, access_list = EXCLUDED.access_list,
    attributes_ts = EXCLUDED.attributes_ts
"""

# A subtree: the node itself and every path below it ("C" collation: '/' follows '.').
DELETE_SUBTREE = """
DELETE FROM device_params
WHERE device_id = $1 AND (path = $2 OR (path >= $2 || '.' AND path < $2 || '/'))
"""

PRUNE_ALL = """
DELETE FROM device_params
WHERE device_id = $1 AND path >= $2 AND path < $3 AND path <> ALL($4::text[])
"""

PRUNE_CHILDREN = """
DELETE FROM device_params
WHERE device_id = $1 AND path >= $2 AND path < $3
  AND split_part(substr(path, length($2) + 1), '.', 1) <> ALL($4::text[])
"""

TASK_STEP = "UPDATE tasks SET progress = $2 WHERE id = $1 AND status IN ('pending', 'waiting')"

TASK_FINISH = """
UPDATE tasks SET status = $2, result = $3, progress = COALESCE($4, progress),
                 completed = CASE WHEN $2 = 'done' THEN now() END
WHERE id = $1 AND status IN ('pending', 'waiting')
RETURNING device_id
"""

TASK_FAIL = """
UPDATE tasks SET retries = retries + 1, status = 'pending',
    retry_at = CASE WHEN retries + 1 > $3 THEN 'infinity'::timestamptz
                    ELSE now() + make_interval(secs => $2 * power(2, retries)) END
WHERE id = $1 AND status IN ('pending', 'waiting')
RETURNING device_id, retries, retry_at
"""

UPSERT_FAULT = """
INSERT INTO faults (id, device_id, channel, task_id, code, message, detail, retries, timestamp)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (id) DO UPDATE SET
    code = EXCLUDED.code, message = EXCLUDED.message, detail = EXCLUDED.detail,
    retries = EXCLUDED.retries, timestamp = EXCLUDED.timestamp
"""

DELETE_FAULT = "DELETE FROM faults WHERE id = $1"

INSERT_EVENT = "INSERT INTO device_events (device_id, kind, detail) VALUES ($1, $2, $3)"

NOTIFY_TASK = "SELECT pg_notify('chronos_task', $1)"

LOAD_DEVICE = """
SELECT id, oui, product_class, serial_number, manufacturer, tags, registered, last_inform,
       last_boot, last_bootstrap, inform_params
FROM devices WHERE id = $1
"""

# The parameters provisioning reads: exact paths, and subtrees ('' is the whole tree).
LOAD_PARAMS = """
SELECT p.path, p.object, p.writable, p.value, p.value_type,
       GREATEST(p.value_ts, CASE WHEN p.path = ANY($4::text[]) THEN $5::timestamptz END)
           AS value_ts,
       p.children_ts, p.subtree_ts
FROM device_params p
WHERE p.device_id = $1 AND (
    p.path = ANY($2::text[])
    OR EXISTS (SELECT 1 FROM unnest($3::text[]) AS s(prefix)
               WHERE s.prefix = '' OR p.path = s.prefix
                  OR (p.path >= s.prefix || '.' AND p.path < s.prefix || '/')))
"""

LOAD_CHANNEL_FAULTS = """
SELECT channel, retries, timestamp FROM faults
WHERE device_id = $1 AND task_id IS NULL AND channel = ANY($2::text[])
"""

LOAD_TRANSFERS = """
SELECT name, body->>'fileType' AS file_type,
       COALESCE(body->>'file', body->>'fileName') AS file_name, max(completed) AS completed
FROM tasks
WHERE device_id = $1 AND name IN ('download', 'upload') AND status = 'done'
GROUP BY 1, 2, 3
"""

UPSERT_CHANNEL_FAULT = """
INSERT INTO faults (id, device_id, channel, code, message, detail, retries, timestamp)
VALUES ($1, $2, $3, $4, $5, $6, 0, now())
ON CONFLICT (id) DO UPDATE SET
    code = EXCLUDED.code, message = EXCLUDED.message, detail = EXCLUDED.detail,
    retries = faults.retries + 1, timestamp = now()
"""

CHANGE_TAGS = """
UPDATE devices SET tags = COALESCE((
    SELECT array_agg(DISTINCT t ORDER BY t) FROM unnest(array_cat(tags, $2::text[])) AS t
    WHERE t <> ALL($3::text[])), '{}')
WHERE id = $1
"""

# A task provisioning asks for, unless one with the same key is still open.
QUEUE_TASK = """
INSERT INTO tasks (device_id, name, body, args)
SELECT $1, $2, $3, $4
WHERE NOT EXISTS (
    SELECT 1 FROM tasks WHERE device_id = $1 AND status IN ('pending', 'waiting')
      AND body->>'uniqueKey' = $5)
"""


# Events of an Inform whose content the CPE sends again at its next Inform.
_SOFT_EVENTS = frozenset({"2 PERIODIC", "6 CONNECTION REQUEST"})


class LeaseLost(Exception):
    """This session no longer holds its device's lease; it must end and write nothing."""


def task_hex(task_id: int) -> str:
    """A task id as GenieACS shows one: 24 hex digits (an ObjectId's shape)."""
    return f"{task_id:024x}"


def task_channel(task_id: int) -> str:
    return f"task_{task_hex(task_id)}"


_SEP = "\x1f"  # joins lists into one text column; XML cannot carry it, so names cannot


@dataclass(frozen=True, slots=True)
class _Begin:
    session_id: str
    record: s.InformRecord
    lease_seconds: int


@dataclass(frozen=True, slots=True)
class StoreConfig:
    retry_delay: int = 300
    max_retries: int = 8


class CwmpStore:
    """SQL for the CWMP server; one instance per process, over a shared pool."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer | None, config: StoreConfig) -> None:
        self.pool = pool
        self.sealer = sealer
        self.config = config
        # Statement errors (not lost connections) are retried per item by the batcher.
        retry = (asyncpg.PostgresError,)
        self._informs: Batcher[_Begin, dict[str, Any] | None] = Batcher(
            self._begin_batch, retry_alone=retry
        )
        self._first_fetches: Batcher[tuple[str, str, int], tuple[bool, list[Any]]] = Batcher(
            self._first_fetch_batch, retry_alone=retry
        )

    # --- values in and out ---

    def _value_arrays(
        self, params: Iterable[m.ParameterValue]
    ) -> tuple[list[str], list[str], list[str]]:
        """Columns for an unnest upsert (path, value, type): canonical values, secrets
        sealed, one entry per path (the last one wins)."""
        latest: dict[str, tuple[str, str]] = {}
        for p in params:
            if p.name and not p.name.endswith("."):
                latest[p.name] = v.canonical(p.type, p.value)
        paths, texts, types = [], [], []
        sealer = self.sealer
        for path, (value, type_) in latest.items():
            paths.append(path)
            secret = sealer is not None and value and is_secret_path(path)
            texts.append(sealer.seal(value) if secret else value)  # type: ignore[union-attr]
            types.append(type_)
        return paths, texts, types

    # --- session lifecycle ---

    async def begin(
        self, session_id: str, record: s.InformRecord, lease_seconds: int
    ) -> dict[str, Any] | None:
        """Store an Inform and take the device's lease; None if another session has it."""
        return await self._informs.submit(_Begin(session_id, record, lease_seconds))

    async def _begin_batch(self, batch: Sequence[_Begin]) -> list[dict[str, Any] | None]:
        rows = await self.pool.fetch(BEGIN_SESSIONS, *self.begin_arguments(batch))
        taken = {r["id"]: r["options"] for r in rows}
        return [taken.get(item.record.device_id) for item in batch]

    def begin_arguments(self, batch: Sequence[_Begin]) -> tuple[Any, ...]:
        """BEGIN_SESSIONS' arguments: a column per device field, a column per param field."""
        cols: list[list[Any]] = [[] for _ in range(12)]
        p_dev: list[str] = []
        p_path: list[str] = []
        p_value: list[str] = []
        p_type: list[str] = []
        sync = False
        for item in batch:
            inform = item.record.inform
            ident = inform.device_id
            events = [e.event_code for e in inform.events]
            sync = sync or not _SOFT_EVENTS.issuperset(events)
            paths, texts, types = self._value_arrays(inform.parameters)
            row = (
                item.record.device_id,
                ident.oui,
                ident.product_class,
                ident.serial_number,
                ident.manufacturer,
                _SEP.join(events),
                "1 BOOT" in events,
                "0 BOOTSTRAP" in events,
                item.record.cwmp_ns.rpartition(":")[2],
                item.session_id,
                item.lease_seconds,
                _SEP.join(paths),
            )
            for col, value in zip(cols, row, strict=True):
                col.append(value)
            p_dev.extend([item.record.device_id] * len(paths))
            p_path.extend(paths)
            p_value.extend(texts)
            p_type.extend(types)
        return (*cols, p_dev, p_path, p_value, sync, p_type)

    async def fetch_tasks(
        self, device_id: str, session_id: str, exclude: Iterable[int], lease_seconds: int
    ) -> list[TaskRecord]:
        """Open tasks to run now; with none left, the lease is released."""
        excluded = list(exclude)
        if not excluded:
            held, tasks = await self._first_fetches.submit((device_id, session_id, lease_seconds))
        else:
            row = await self.pool.fetchrow(
                FETCH_TASKS, device_id, session_id, excluded, lease_seconds
            )
            assert row is not None
            held, tasks = row["held"], row["tasks"]
        if not held:
            raise LeaseLost(device_id)
        return [_task_record(t) for t in tasks]

    async def _first_fetch_batch(
        self, batch: Sequence[tuple[str, str, int]]
    ) -> list[tuple[bool, list[Any]]]:
        rows = await self.pool.fetch(
            FIRST_TASKS, [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch]
        )
        found = {r["device_id"]: (r["held"], r["tasks"]) for r in rows}
        return [found.get(b[0], (False, [])) for b in batch]

    async def release(self, device_id: str, session_id: str) -> None:
        await self.pool.execute(RELEASE_LEASE, device_id, session_id)

    async def commit(
        self,
        device_id: str,
        session_id: str,
        records: Sequence[s.Record],
        lease_seconds: int,
        *,
        release: bool = False,
    ) -> None:
        """Apply a session's records atomically, under its lease."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(EXTEND_LEASE, device_id, session_id, lease_seconds):
                raise LeaseLost(device_id)
            for record in records:
                await _APPLY[type(record)](self, conn, device_id, record)
            if release:
                await conn.execute(RELEASE_LEASE, device_id, session_id)

    # --- record handlers ---

    async def apply_tree(
        self, conn: asyncpg.Connection, device_id: str, update: tree.TreeUpdate
    ) -> None:
        """Write what an RPC taught us about the tree; deletions first."""
        for path in update.deletes:
            await conn.execute(DELETE_SUBTREE, device_id, path)
        for prune in update.prunes:
            await _prune(conn, device_id, prune)
        if update.nodes:
            await conn.execute(
                UPSERT_NODES,
                device_id,
                [n.path for n in update.nodes],
                [n.object for n in update.nodes],
                [n.writable for n in update.nodes],
            )
        if update.values:
            await conn.execute(UPSERT_VALUES, device_id, *self._value_arrays(update.values))
        if update.enumerated:
            await conn.execute(
                UPSERT_ENUMERATED,
                device_id,
                [e.path for e in update.enumerated],
                [e.deep for e in update.enumerated],
            )
        if update.attributes:
            await conn.execute(
                UPSERT_ATTRIBUTES,
                device_id,
                [a.name for a in update.attributes],
                [a.notification for a in update.attributes],
                [",".join(a.access_list) for a in update.attributes],
            )

    async def _step(self, conn: asyncpg.Connection, device_id: str, r: s.TaskStep) -> None:
        await self.apply_tree(conn, device_id, r.update)
        if r.progress is not None:
            await conn.execute(TASK_STEP, r.task_id, r.progress)

    async def _finished(self, conn: asyncpg.Connection, device_id: str, r: s.TaskFinished) -> None:
        await self.apply_tree(conn, device_id, r.update)
        await self.finish_task(
            conn, device_id, r.task_id, status=r.status, result=r.result, progress=r.progress
        )

    async def finish_task(
        self,
        conn: asyncpg.Connection,
        device_id: str,
        task_id: int,
        *,
        status: str,
        result: dict[str, Any] | None,
        progress: dict[str, Any] | None = None,
    ) -> None:
        if await conn.fetchval(TASK_FINISH, task_id, status, result, progress) is None:
            return  # deleted meanwhile, or already finished
        if status == "done":
            await conn.execute(DELETE_FAULT, f"{device_id}:{task_channel(task_id)}")
        await conn.execute(NOTIFY_TASK, f"{task_id}:{status}")
        log.info(
            "task finished",
            extra={"device_id": device_id, "task_id": task_id, "status": status},
        )

    async def _failed(self, conn: asyncpg.Connection, device_id: str, r: s.TaskFailed) -> None:
        await self.fail_task(
            conn, device_id, r.task_id, code=r.code, message=r.message, detail=r.detail
        )

    async def fail_task(
        self,
        conn: asyncpg.Connection,
        device_id: str,
        task_id: int,
        *,
        code: str,
        message: str,
        detail: dict[str, Any] | None,
    ) -> None:
        row = await conn.fetchrow(
            TASK_FAIL, task_id, self.config.retry_delay, self.config.max_retries
        )
        if row is None:
            return
        channel = task_channel(task_id)
        await conn.execute(
            UPSERT_FAULT,
            f"{device_id}:{channel}",
            device_id,
            channel,
            task_id,
            code,
            message,
            detail,
            row["retries"] - 1,
        )
        await conn.execute(NOTIFY_TASK, f"{task_id}:fault")
        log.warning(
            "task faulted",
            extra={"device_id": device_id, "task_id": task_id, "code": code, "fault": message},
        )

    async def _transfer(
        self, conn: asyncpg.Connection, device_id: str, r: s.TransferRecord
    ) -> None:
        tc = r.message
        detail = {
            "commandKey": tc.command_key,
            "faultCode": tc.fault.code,
            "faultString": tc.fault.string,
            "startTime": tc.start_time.isoformat() if tc.start_time else None,
            "completeTime": tc.complete_time.isoformat() if tc.complete_time else None,
        }
        await conn.execute(INSERT_EVENT, device_id, "TransferComplete", detail)
        task_id = task_id_from_key(tc.command_key)
        if task_id is None:
            return
        if tc.fault.code:
            await self.fail_task(
                conn,
                device_id,
                task_id,
                code=f"cwmp.{tc.fault.code}",
                message=tc.fault.string or "transfer failed",
                detail={"code": tc.fault.code, "string": tc.fault.string},
            )
        else:
            await self.finish_task(conn, device_id, task_id, status="done", result=detail)

    async def _event(
        self, conn: asyncpg.Connection, device_id: str, r: s.DeviceEventRecord
    ) -> None:
        await conn.execute(INSERT_EVENT, device_id, r.kind, r.detail)

    async def _session_fault(
        self, conn: asyncpg.Connection, device_id: str, r: s.SessionFault
    ) -> None:
        await conn.execute(
            UPSERT_FAULT,
            f"{device_id}:default",
            device_id,
            "default",
            None,
            r.code,
            r.message,
            None,
            0,
        )

    async def load_device(self, device_id: str, spec: LoadSpec) -> DeviceSnapshot:
        """What a session's provisioning reads, in one consistent snapshot."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            device = await conn.fetchrow(LOAD_DEVICE, device_id)
            if device is None:
                raise LeaseLost(device_id)  # deleted under the session
            params = await conn.fetch(
                LOAD_PARAMS,
                device_id,
                sorted(spec.exact),
                sorted(spec.subtrees),
                device["inform_params"],
                device["last_inform"],
            )
            faults = await conn.fetch(LOAD_CHANNEL_FAULTS, device_id, sorted(spec.channels))
            transfers = await conn.fetch(LOAD_TRANSFERS, device_id)
        return DeviceSnapshot(
            id=device["id"],
            oui=device["oui"],
            product_class=device["product_class"],
            serial_number=device["serial_number"],
            manufacturer=device["manufacturer"],
            tags=tuple(device["tags"]),
            registered=device["registered"],
            last_inform=device["last_inform"],
            last_boot=device["last_boot"],
            last_bootstrap=device["last_bootstrap"],
            params=tuple(dict(r) for r in params),
            faults={r["channel"]: (r["retries"], r["timestamp"]) for r in faults},
            done_files=frozenset(
                (r["file_type"], r["file_name"]) for r in transfers if r["name"] == "download"
            ),
            uploads={r["file_type"]: r["completed"] for r in transfers if r["name"] == "upload"},
        )

    async def _provision_step(
        self, conn: asyncpg.Connection, device_id: str, r: s.ProvisionStep
    ) -> None:
        await self.apply_tree(conn, device_id, r.update)

    async def _channel(self, conn: asyncpg.Connection, device_id: str, r: s.ChannelResult) -> None:
        fault_id = f"{device_id}:{r.channel}"
        if r.fault is None:
            await conn.execute(DELETE_FAULT, fault_id)
            return
        detail = {"origin": r.fault.origin, **(r.fault.detail or {})}
        await conn.execute(
            UPSERT_CHANNEL_FAULT,
            fault_id,
            device_id,
            r.channel,
            r.fault.code,
            r.fault.message,
            detail,
        )
        log.warning(
            "provisioning faulted",
            extra={
                "device_id": device_id,
                "channel": r.channel,
                "code": r.fault.code,
                "origin": r.fault.origin,
                "fault": r.fault.message,
            },
        )

    async def _tags(self, conn: asyncpg.Connection, device_id: str, r: s.TagsChanged) -> None:
        await conn.execute(CHANGE_TAGS, device_id, list(r.added), list(r.removed))

    async def _queue(self, conn: asyncpg.Connection, device_id: str, r: s.QueueTasks) -> None:
        for task in r.tasks:
            body = {**task.body, "uniqueKey": task.unique_key}
            args = await queued_arguments(conn, task)
            if args is None:
                channel = task.unique_key.split(":")[1]
                fault = ChannelFault(
                    channel,
                    "provision.file_not_found",
                    f"no stored file {task.body.get('file')!r}",
                    task.unique_key,
                )
                await self._channel(conn, device_id, s.ChannelResult(channel, fault))
                continue
            await conn.execute(QUEUE_TASK, device_id, task.name, body, args, task.unique_key)

    async def _inform(self, conn: asyncpg.Connection, device_id: str, r: s.InformRecord) -> None:
        raise AssertionError("an Inform is stored by begin(), never by commit()")


async def queued_arguments(conn: asyncpg.Connection, task: QueuedTask) -> dict[str, Any] | None:
    """What a transfer task provisioning queues runs with (as the API would have made it);
    None when its stored file does not exist."""
    body = task.body
    if task.name == "upload":
        return {
            "fileType": body["fileType"],
            "url": "",
            "username": "",
            "password": "",
            "delaySeconds": 0,
        }
    from acs import filestore  # filestore builds on this module's task SQL

    stored = await filestore.current_file(conn, body["file"])
    if stored is None:
        return None
    return {
        "file": stored.name,
        "fileType": body.get("fileType") or stored.file_type,
        "fileSize": stored.length,
        "targetFileName": body.get("targetFileName", ""),
        "delaySeconds": 0,
        "successUrl": "",
        "failureUrl": "",
    }


async def _prune(conn: asyncpg.Connection, device_id: str, prune: tree.Prune) -> None:
    low, high = (prune.root + ".", prune.root + "/") if prune.root else ("", "\U0010ffff")
    if prune.next_level:
        start = len(low)
        children = sorted({p[start:].split(".", 1)[0] for p in prune.keep if p.startswith(low)})
        await conn.execute(PRUNE_CHILDREN, device_id, low, high, children)
    else:
        await conn.execute(PRUNE_ALL, device_id, low, high, sorted(prune.keep))


def _task_record(row: dict[str, Any]) -> TaskRecord:
    args = row["args"]
    progress = row["progress"]
    return TaskRecord(
        id=row["id"],
        name=row["name"],
        args=json.loads(args) if isinstance(args, str) else args,
        progress=(json.loads(progress) if isinstance(progress, str) else progress) or {},
        retries=row["retries"],
    )


_APPLY = {
    s.InformRecord: CwmpStore._inform,
    s.ProvisionStep: CwmpStore._provision_step,
    s.ChannelResult: CwmpStore._channel,
    s.TagsChanged: CwmpStore._tags,
    s.QueueTasks: CwmpStore._queue,
    s.TaskStep: CwmpStore._step,
    s.TaskFinished: CwmpStore._finished,
    s.TaskFailed: CwmpStore._failed,
    s.TransferRecord: CwmpStore._transfer,
    s.DeviceEventRecord: CwmpStore._event,
    s.SessionFault: CwmpStore._session_fault,
}
