"""Device, task and fault documents in GenieACS's JSON shapes, built from our rows.

A device document nests its parameter tree the way GenieACS stores it: every node is an
object keyed by path segment, with `_`-prefixed attributes beside its children:

    {"_id": ..., "_deviceId": {"_OUI": ...}, "_lastInform": "2024-...Z",
     "InternetGatewayDevice": {"_object": true, "DeviceInfo": {"SoftwareVersion":
        {"_value": "1.0", "_type": "xsd:string", "_timestamp": "...", "_writable": false}}}}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from acs import values as v
from acs.store import task_hex
from schemas.sealing import SEALED_PREFIX

MASK = "********"


def iso(value: datetime | None) -> str | None:
    """A timestamp as GenieACS writes one: UTC, milliseconds, Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _node(doc: dict[str, Any], path: str) -> dict[str, Any]:
    node = doc
    for segment in path.split("."):
        child = node.get(segment)
        if not isinstance(child, dict):
            child = node[segment] = {}
        node = child
    return node


def device_document(
    device: Mapping[str, Any],
    params: Iterable[Mapping[str, Any]],
    reveal: Callable[[str], str] | None,
) -> dict[str, Any]:
    """One device; `reveal` opens sealed values (None: show them masked)."""
    doc: dict[str, Any] = {
        "_id": device["id"],
        "_deviceId": {
            "_Manufacturer": device["manufacturer"],
            "_OUI": device["oui"],
            "_ProductClass": device["product_class"],
            "_SerialNumber": device["serial_number"],
        },
        "_registered": iso(device["registered"]),
    }
    for key, column in (
        ("_lastInform", "last_inform"),
        ("_lastBoot", "last_boot"),
        ("_lastBootstrap", "last_bootstrap"),
    ):
        if device[column] is not None:
            doc[key] = iso(device[column])
    if device["tags"]:
        doc["_tags"] = list(device["tags"])
    # A value the last Inform carried unchanged is as fresh as that Inform.
    fresh = frozenset(device["inform_params"] or ())
    last_inform = device["last_inform"]
    for row in params:
        if not row["path"]:
            continue  # the data model's root ("" lists the top-level objects)
        node = _node(doc, row["path"])
        if row["object"] is not None:
            node["_object"] = row["object"]
        if row["writable"] is not None:
            node["_writable"] = row["writable"]
        if row["value"] is not None:
            text = row["value"]
            if text.startswith(SEALED_PREFIX):
                text = reveal(text) if reveal else MASK
            node["_value"] = v.to_json(row["value_type"], text)
            node["_type"] = row["value_type"]
            stamp = row["value_ts"]
            if row["path"] in fresh and last_inform is not None and last_inform > stamp:
                stamp = last_inform
            node["_timestamp"] = iso(stamp)
        elif row["object"] and row["object_ts"] is not None:
            node["_timestamp"] = iso(row["object_ts"])
        if row["notification"] is not None:
            node["_notification"] = row["notification"]
            node["_accessList"] = list(row["access_list"] or [])
            node["_attributesTimestamp"] = iso(row["attributes_ts"])
    return doc


def parse_projection(text: str | None) -> list[str] | None:
    """`a,b.c` -> ["a", "b.c"]; None (everything) when absent or when it names ""."""
    if text is None:
        return None
    items = [p.strip() for p in text.split(",")]
    if "" in items and len(items) > 1:
        return None
    paths = [p for p in items if p]
    return paths or None


def parameter_prefixes(projection: Sequence[str]) -> list[str]:
    """The tree paths a projection needs: `X.Y._value` needs `X.Y`; `_id` needs none."""
    out = []
    for path in projection:
        segments = path.split(".")
        while segments and segments[-1].startswith("_"):
            segments.pop()
        if segments:
            out.append(".".join(segments))
    return sorted(set(out))


def project(doc: Mapping[str, Any], projection: Sequence[str] | None) -> dict[str, Any]:
    """Keep only the projected dotted paths (and `_id`, as MongoDB does)."""
    if projection is None:
        return dict(doc)
    out: dict[str, Any] = {"_id": doc["_id"]}
    for path in projection:
        segments = path.split(".")
        source: Any = doc
        for segment in segments:
            if not isinstance(source, Mapping) or segment not in source:
                break
            source = source[segment]
        else:
            target = out
            for segment in segments[:-1]:
                target = target.setdefault(segment, {})
            target[segments[-1]] = source
    return out


def task_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A task as GenieACS returns one: the client's body, `device`, `timestamp`, `_id`."""
    doc = dict(row["body"])
    doc["device"] = row["device_id"]
    doc["timestamp"] = iso(row["created"])
    if row["expiry"] is not None:
        doc["expiry"] = iso(row["expiry"])
    doc["_id"] = task_hex(row["id"])
    return doc


def task_status_document(row: Mapping[str, Any], fault: Mapping[str, Any] | None) -> dict:
    """Our fuller view of a task, including finished ones (`/api/v1/tasks/{id}`)."""
    doc = task_document(row)
    doc["status"] = "faulted" if fault is not None and row["status"] == "pending" else row["status"]
    doc["retries"] = row["retries"]
    if row["gave_up"]:
        doc["retryAt"] = None  # out of automatic retries: POST /tasks/{id}/retry
    elif row["retry_at"] is not None:
        doc["retryAt"] = iso(row["retry_at"])
    if row["result"] is not None:
        doc["result"] = row["result"]
    if row["completed"] is not None:
        doc["completed"] = iso(row["completed"])
    if fault is not None:
        doc["fault"] = fault_document(fault)
    return doc


def fault_document(row: Mapping[str, Any]) -> dict[str, Any]:
    doc = {
        "_id": row["id"],
        "device": row["device_id"],
        "channel": row["channel"],
        "code": row["code"],
        "message": row["message"],
        "timestamp": iso(row["timestamp"]),
        "retries": row["retries"],
    }
    if row["detail"] is not None:
        doc["detail"] = row["detail"]
    return doc
