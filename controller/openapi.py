"""GET /api/v1/openapi.json: the API described for clients and for schema-based testing.

Task body schemas come from the pydantic models that validate them, so the document
cannot drift from what the server accepts.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web

from controller.provisioning_api import ClassOptions
from schemas.campaigns import CampaignSpec, ResumeRequest
from schemas.olt import Display, OntProvision
from schemas.targets import TargetIn
from schemas.tasks import TASK_ADAPTER

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
            "required": ["code", "message"],
        }
    },
}


def _op(summary: str, params: list[str] = (), body: str | None = None, **responses: str) -> dict:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [_PARAMS[p] for p in params],
        "responses": {code.lstrip("_"): {"description": text} for code, text in responses.items()},
    }
    op["responses"].setdefault("401", {"description": "no valid API token"})
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def _query_param(name: str, description: str, type_: str = "string") -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": type_},
        "description": description,
    }


def _path_param(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_PARAMS = {
    "query": _query_param("query", "MongoDB-style JSON filter, as GenieACS"),
    "projection": _query_param("projection", "comma-separated paths to return"),
    "sort": _query_param("sort", 'JSON object, e.g. {"_lastInform": -1}'),
    "skip": _query_param("skip", "items to skip", "integer"),
    "limit": _query_param("limit", "most items to return", "integer"),
    "connection_request": _query_param("connection_request", "wake the device now"),
    "timeout": _query_param("timeout", "ms to wait for the device's session", "integer"),
    "id": _path_param("id", "device id (percent-encoded) or task id"),
    "tag": _path_param("tag", "tag"),
    "name": _path_param("name", "name"),
    "upload": _path_param("upload", "upload id"),
    "oui": _path_param("oui", "OUI"),
    "product_class": _path_param("product_class", "product class, or * for all"),
    "dryRun": _query_param("dryRun", "1: count devices and waves, create nothing"),
    "zone": _query_param("zone", "only those labelled with this zone"),
    "kind": _query_param("kind", "only targets of this kind (snmp, huawei-olt, padtec)"),
    "agent": _query_param("agent", "only targets this agent polls"),
    "target": _query_param("target", "target id", "integer"),
    "metric": _query_param("metric", "metric name; a trailing * matches a prefix"),
    "from": _query_param("from", "start: ISO-8601 or epoch milliseconds"),
    "to": _query_param("to", "end: ISO-8601 or epoch milliseconds"),
    "step": _query_param("step", "bucket width, e.g. 300s, 1h (picks a rollup)"),
    "olt": _query_param("olt", "OLT (target) id", "integer"),
    "state": _query_param("state", "run state (online, offline) or job state"),
    "serial": _query_param("serial", "ONT serial, 16 hex digits or HWTC-XXXXXXXX"),
    "ont": _path_param("ont", "the ONT's id (as /api/v1/onts lists it)"),
    "port": _path_param("port", "PON port as F-S-P (0-1-2)"),
    "types": _query_param("types", "comma-separated event types (job, inventory, autofind)"),
    "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": 200},
        "description": "the same key returns the same job instead of a second one",
    },
}
_LIST = ["query", "projection", "sort", "skip", "limit"]


@cache
def document() -> dict[str, Any]:
    schema = TASK_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
    components = schema.pop("$defs", {})
    components["Task"] = schema
    components["Error"] = _ERROR
    for model in (CampaignSpec, ResumeRequest, ClassOptions, TargetIn, OntProvision, Display):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    return {
        "openapi": "3.1.0",
        "info": {"title": "ChronosConnect API", "version": "1"},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
        "security": [{"bearer": []}, {"basic": []}],
        "paths": {
            "/devices/": {
                "get": _op("Devices matching a query", _LIST, _200="device documents; header total")
            },
            "/devices/{id}": {"delete": _op("Delete a device", ["id"], _200="deleted")},
            "/devices/{id}/tasks": {
                "post": _op(
                    "Queue a task, optionally waking the device",
                    ["id", "connection_request", "timeout"],
                    "Task",
                    _200="task done",
                    _202="task queued (reason phrase says why it did not run)",
                    _400="invalid task",
                    _404="no such device",
                )
            },
            "/devices/{id}/tags/{tag}": {
                "post": _op("Tag a device", ["id", "tag"], _200="tagged", _404="no such device"),
                "delete": _op("Untag a device", ["id", "tag"], _200="untagged"),
            },
            "/tasks/": {"get": _op("Open tasks", _LIST, _200="task documents; header total")},
            "/tasks/{id}": {"delete": _op("Delete a task", ["id"], _200="deleted", _404="none")},
            "/tasks/{id}/retry": {
                "post": _op("Clear a task's fault and retry", ["id"], _200="ok", _404="none")
            },
            "/faults/": {"get": _op("Faults", _LIST, _200="fault documents; header total")},
            "/faults/{id}": {"delete": _op("Delete a fault (and its task)", ["id"], _200="ok")},
            "/api/v1/tasks/{id}": {
                "get": _op("A task with status, fault and result", ["id"], _200="task", _404="none")
            },
            "/api/v1/devices/{id}/connection-requests": {
                "get": _op("Recent connection requests", ["id"], _200="outcomes", _404="none")
            },
            "/api/v1/devices/{id}/connection-request": {
                "post": _op("Wake a device", ["id"], _200="woken", _504="no answer", _404="none")
            },
            "/files/": {"get": _op("Stored files", _LIST, _200="file documents; header total")},
            "/files/{name}": {
                "put": _op(
                    "Store a file (headers fileType, oui, productClass, version)",
                    ["name"],
                    _201="stored",
                    _413="too large",
                ),
                "delete": _op("Delete a stored file", ["name"], _200="deleted", _404="none"),
            },
            "/api/v1/devices/{id}/uploads": {
                "get": _op("Files the device uploaded", ["id"], _200="uploads", _404="none")
            },
            "/api/v1/devices/{id}/uploads/{upload}": {
                "get": _op("One upload's content", ["id", "upload"], _200="content", _404="none")
            },
            **{
                f"/{kind}/": {"get": _op(f"Stored {kind}", _LIST, _200="documents; header total")}
                for kind in ("presets", "provisions", "virtual_parameters")
            },
            **{
                f"/{kind}/{{name}}": {
                    "put": _op(
                        f"Create or replace one of {kind} (declarative documents)",
                        ["name"],
                        _200="saved",
                        _400="invalid document; the message names the step",
                    ),
                    "delete": _op(f"Delete one of {kind}", ["name"], _200="deleted"),
                }
                for kind in ("presets", "provisions", "virtual_parameters")
            },
            "/api/v1/device-classes": {"get": _op("Quirk settings per model", [], _200="classes")},
            "/api/v1/device-classes/{oui}/{product_class}": {
                "put": _op(
                    "Set a model's quirks",
                    ["oui", "product_class"],
                    "ClassOptions",
                    _200="saved",
                    _400="invalid",
                ),
                "delete": _op(
                    "Drop a model's quirks", ["oui", "product_class"], _200="deleted", _404="none"
                ),
            },
            "/api/v1/campaigns": {
                "get": _op("Campaigns, newest first", ["skip", "limit"], _200="campaigns"),
                "post": _op(
                    "Start a campaign", ["dryRun"], "CampaignSpec", _201="created", _400="invalid"
                ),
            },
            "/api/v1/campaigns/{id}": {
                "get": _op(
                    "Progress and per-device outcomes",
                    ["id", "skip", "limit"],
                    _200="campaign",
                    _404="none",
                )
            },
            **{
                f"/api/v1/campaigns/{{id}}/{action}": {
                    "post": _op(
                        f"{action.capitalize()} a campaign",
                        ["id"],
                        "ResumeRequest" if action == "resume" else None,
                        _200="done",
                        _404="none",
                        _409="not allowed in its state",
                    )
                }
                for action in ("pause", "resume", "cancel")
            },
            "/api/v1/targets": {
                "get": _op(
                    "Targets, with the agent polling each (credentials summarised)",
                    ["kind", "zone", "agent", "skip", "limit"],
                    _200="targets; total header",
                ),
                "post": _op("Create a target", [], "TargetIn", _201="created", _400="invalid"),
            },
            "/api/v1/targets/import": {
                "post": {
                    **_op(
                        "Create or update targets by name from CSV, YAML or JSON; all or nothing",
                        _200="counts created and updated",
                        _400="invalid: every problem listed, nothing stored",
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/yaml": {"schema": {"type": "string"}},
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/TargetIn"},
                                }
                            },
                        },
                    },
                }
            },
            "/api/v1/targets/{id}": {
                "get": _op("One target", ["id"], _200="target", _404="none"),
                "put": _op(
                    "Replace a target (credentials left out are kept)",
                    ["id"],
                    "TargetIn",
                    _200="replaced",
                    _404="none",
                ),
                "delete": _op("Delete a target (its agent stops)", ["id"], _200="deleted"),
            },
            "/api/v1/agents": {
                "get": _op(
                    "Agents: labels, drivers, lease, controller, targets held",
                    ["zone", "skip", "limit"],
                    _200="agents; total header",
                )
            },
            "/api/v1/agents/{id}": {"get": _op("One agent", ["id"], _200="agent", _404="none")},
            "/api/v1/agents/stream": {
                "get": _op(
                    "The agent stream: a WebSocket of msgpack frames (agent-role tokens only)",
                    _101="switching protocols",
                    _403="not an agent token",
                )
            },
            "/api/v1/series": {
                "get": _op(
                    "Time series (target, metric, labels)",
                    ["target", "metric", "skip", "limit"],
                    _200="series; total header",
                )
            },
            "/api/v1/series/{id}": {"get": _op("One series", ["id"], _200="series", _404="none")},
            "/api/v1/series/{id}/samples": {
                "get": _op(
                    "Samples, raw or rolled up (5 min, 1 h, 1 d: min/max/avg/count) by range",
                    ["id", "from", "to", "step"],
                    _200="points and the resolution used",
                    _400="bad range or step",
                    _404="none",
                )
            },
            "/api/v1/olts": {
                "get": _op("OLTs: version, agent, ONT counts", ["skip", "limit"], _200="OLTs")
            },
            "/api/v1/olts/{id}": {"get": _op("One OLT", ["id"], _200="OLT", _404="none")},
            "/api/v1/olts/{id}/board-info": {
                "get": _op("Boards as last polled", ["id"], _200="boards", _404="none")
            },
            "/api/v1/olts/{id}/autofind-onts/all": {
                "get": _op("ONTs the OLT sees but has not registered", ["id"], _200="ONTs")
            },
            "/api/v1/olts/{id}/onts": {
                "post": _op(
                    "Provision an ONT (a job: ont add, then its service ports)",
                    ["id", "Idempotency-Key"],
                    "OntProvision",
                    _202="job queued",
                    _200="the job of this idempotency key",
                    _400="bad parameters",
                    _409="idempotency key used for another job",
                )
            },
            "/api/v1/olts/{id}/onts/{ont}": {
                "delete": _op(
                    "Delete an ONT and its service ports (a job)",
                    ["id", "ont", "Idempotency-Key"],
                    _202="job queued",
                )
            },
            "/api/v1/olts/{id}/onts/{ont}/reboot": {
                "post": _op("Reboot an ONT (a job)", ["id", "ont", "Idempotency-Key"], _202="job")
            },
            "/api/v1/olts/{id}/ports/{port}/enable": {
                "post": _op(
                    "Enable a PON port (a job)", ["id", "port", "Idempotency-Key"], _202="job"
                )
            },
            "/api/v1/olts/{id}/ports/{port}/disable": {
                "post": _op("Disable a PON port (a job)", ["id", "port"], _202="job")
            },
            "/api/v1/olts/{id}/commands": {
                "post": _op(
                    "Run an allow-listed read-only display command (a job)",
                    ["id", "Idempotency-Key"],
                    "Display",
                    _202="job",
                    _400="not allowed",
                )
            },
            "/api/v1/onts": {
                "get": _op(
                    "ONTs, each with the CPE behind it",
                    ["olt", "state", "serial", "skip", "limit"],
                    _200="ONTs; total header",
                )
            },
            "/api/v1/onts/{id}": {
                "get": _op(
                    "One ONT: its OLT and port, the CPE behind it, its optical levels",
                    ["id"],
                    _200="ONT",
                    _404="none",
                )
            },
            "/api/v1/devices/{id}/ont": {
                "get": _op("The OLT, port and ONT of a CPE", ["id"], _200="ONT", _404="none")
            },
            "/api/v1/jobs": {
                "get": _op("Jobs, newest first", ["target", "state", "skip", "limit"], _200="jobs"),
                "post": _op(
                    "Queue a job: {target, kind, params, timeoutMs, idempotencyKey}",
                    ["Idempotency-Key"],
                    _202="queued",
                    _200="existing job of this key",
                ),
            },
            "/api/v1/jobs/{id}": {
                "get": _op(
                    "One job: state, progress steps, result or error",
                    ["id"],
                    _200="job",
                    _404="none",
                )
            },
            "/api/v1/events": {
                "get": _op(
                    "Live events over a WebSocket of JSON messages (jobs, inventory, autofind)",
                    ["types"],
                    _101="switching protocols",
                )
            },
            "/health": {
                "get": {
                    "summary": "Process serves",
                    "security": [],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Database reachable",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
        },
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", serve)
