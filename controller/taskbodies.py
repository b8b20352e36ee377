"""From a task body an operator POSTs to the arguments the ACS runs. Pure code.

Validation is `schemas.tasks`; here values get their CWMP types. A value without a type
takes the type the device reported for that parameter (what the CPE will accept), else
one inferred from JSON; a value its type cannot hold is refused here, with the name,
rather than faulted later by the CPE. Secrets are sealed in the arguments and masked in
the stored copy of the body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from acs import values as v
from controller.errors import ApiError, bad_request
from schemas import tasks as t
from schemas.sealing import is_secret_path

if TYPE_CHECKING:
    from acs.filestore import StoredFile

MASKED = "********"


def validate(body: object) -> t._Task:
    """The typed task, or a 400 listing every problem pydantic found."""
    if not isinstance(body, dict):
        raise bad_request("INVALID_TASK", "a task is a JSON object with a 'name'")
    try:
        return t.TASK_ADAPTER.validate_python(body)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or "name", "problem": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        name = body.get("name")
        known = name in t.TASK_NAMES
        message = (
            f"invalid {name} task: {problems[0]['field']}: {problems[0]['problem']}"
            if known
            else f"unknown task name {name!r}; known: {', '.join(t.TASK_NAMES)}"
        )
        raise ApiError(400, "INVALID_TASK", message, {"problems": problems}) from None


def expiry_of(task: t._Task, now: datetime) -> datetime | None:
    if task.expiry is None:
        return None
    if isinstance(task.expiry, datetime):
        return task.expiry if task.expiry.tzinfo else task.expiry.replace(tzinfo=UTC)
    return now + timedelta(seconds=float(task.expiry))


def parameter_names(task: t._Task) -> list[str]:
    """Names whose known types the arguments need (setParameterValues only)."""
    if isinstance(task, t.SetParameterValuesTask):
        return [item[0] for item in task.parameterValues]
    return []


def file_name(task: t._Task) -> str | None:
    """The stored file the arguments need looked up (a download by file name)."""
    return task.stored_file if isinstance(task, t.DownloadTask) else None


def _stored_download(task: t.DownloadTask, name: str, stored: StoredFile | None) -> dict:
    if stored is None:
        raise bad_request(
            "FILE_NOT_FOUND", f"no stored file {name!r}: PUT /files/{{name}} first", file=name
        )
    given = "fileType" in task.model_fields_set
    return {
        "file": name,
        "fileType": task.fileType if given or not stored.file_type else stored.file_type,
        "fileSize": stored.length,
        "targetFileName": task.targetFileName,
        "delaySeconds": task.delaySeconds,
        "successUrl": task.successUrl,
        "failureUrl": task.failureUrl,
    }


def _typed(
    item: Sequence[Any], known: Mapping[str, str], seal: Callable[[str], str], prefix: str = ""
) -> list[str]:
    name, value = item[0], item[1]
    declared = item[2] if len(item) > 2 else None
    type_hint = declared or known.get(prefix + name)
    text, type_ = v.from_json(value, type_hint)
    wanted = v.normalize_type(type_hint) if type_hint else type_
    if type_ != wanted:
        raise bad_request(
            "INVALID_VALUE",
            f"{prefix + name}: {value!r} is not a valid {wanted}",
            parameter=prefix + name,
            type=wanted,
        )
    return [name, seal(text) if is_secret_path(name) else text, type_]


def arguments(
    task: t._Task,
    known_types: Mapping[str, str],
    seal: Callable[[str], str],
    stored: StoredFile | None = None,
) -> dict[str, Any]:
    """What the ACS's runner for this task reads (see acs.tasks); `stored` is the file
    `file_name(task)` names, as stored now (None: there is none)."""
    match task:
        case t.GetParameterValuesTask() | t.GetParameterAttributesTask():
            return {"names": list(task.parameterNames)}
        case t.SetParameterValuesTask():
            return {"values": [_typed(i, known_types, seal) for i in task.parameterValues]}
        case t.RefreshObjectTask():
            return {"path": task.objectName}
        case t.AddObjectTask():
            obj = task.objectName if task.objectName.endswith(".") else task.objectName + "."
            return {"object": obj, "values": [_typed(i, {}, seal) for i in task.parameterValues]}
        case t.DeleteObjectTask():
            obj = task.objectName if task.objectName.endswith(".") else task.objectName + "."
            return {"object": obj}
        case t.DownloadTask():
            if (name := task.stored_file) is not None:
                return _stored_download(task, name, stored)
            return {
                "url": task.url,
                "fileType": task.fileType,
                "fileSize": task.fileSize,
                "targetFileName": task.targetFileName,
                "username": task.username,
                "password": seal(task.password) if task.password else "",
                "delaySeconds": task.delaySeconds,
                "successUrl": task.successUrl,
                "failureUrl": task.failureUrl,
            }
        case t.ScheduleInformTask():
            return {"delaySeconds": task.delaySeconds, "commandKey": task.commandKey}
        case t.GetParameterNamesTask():
            return {"path": task.parameterPath, "nextLevel": task.nextLevel}
        case t.SetParameterAttributesTask():
            return {"attributes": [list(item) for item in task.parameterAttributes]}
        case t.ProvisionsTask():
            for item in task.provisions:
                if not isinstance(item[0], str) or not item[0]:
                    raise bad_request("INVALID_TASK", "each provision is [name, args...]")
            return {"provisions": [list(item) for item in task.provisions]}
        case t.UploadTask():
            return {
                "fileType": task.fileType,
                "url": task.url or "",
                "username": task.username,
                "password": seal(task.password) if task.password else "",
                "delaySeconds": task.delaySeconds,
            }
        case _:
            return {}


def stored_body(body: dict[str, Any]) -> dict[str, Any]:
    """The client's body as kept for listing: credentials masked."""
    out = dict(body)
    if out.get("password"):
        out["password"] = MASKED
    for key in ("parameterValues",):
        items = out.get(key)
        if isinstance(items, list):
            out[key] = [
                [item[0], MASKED, *item[2:]]
                if isinstance(item, list) and item and is_secret_path(str(item[0]))
                else item
                for item in items
            ]
    return out
