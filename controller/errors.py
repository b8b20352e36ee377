"""The API's one error shape, and the middleware that gives every failure that shape.

    {"error": {"code": "DEVICE_NOT_FOUND", "message": "...", "details": {...}}}

Status codes follow GenieACS where it has an equivalent route, so its clients, which
look at the status, keep working; the body is ours everywhere.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("chronos.api")


class ApiError(Exception):
    """An error to answer with `status` and the standard body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> web.Response:
        response = error_response(self.status, self.code, str(self), self.details)
        response.headers.update(self.headers)
        return response


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return web.json_response(body, status=status)


def not_found(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(404, code, message, details)


def bad_request(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(400, code, message, details)


def page_of(request: web.Request, default: int = 1000, most: int = 10_000) -> tuple[int, int]:
    """`skip` and `limit` of a list request (`limit` defaults to `default`, at most `most`)."""
    try:
        skip = int(request.query.get("skip", "0"))
        limit = int(request.query.get("limit", str(default)))
    except ValueError:
        raise bad_request("BAD_PARAMETER", "skip and limit are integers") from None
    if skip < 0 or not 0 < limit <= most:
        raise bad_request("BAD_PARAMETER", f"skip >= 0 and 0 < limit <= {most}")
    return skip, limit


def parse_json(text: str, what: str = "body") -> Any:
    """JSON from a request part, or a 400 that says where it broke."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_request(
            "BAD_JSON", f"{what} is not valid JSON: {exc.msg}", line=exc.lineno, column=exc.colno
        ) from None


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "HTTP_ERROR")
        response = error_response(exc.status, code, exc.reason)
        if allow := exc.headers.get("Allow"):
            response.headers["Allow"] = allow
        return response
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_response(500, "INTERNAL", "internal error; see the server log")
