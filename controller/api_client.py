"""The operator API from the command line: where it is, which token, and one client.

`chronos campaign` and `chronos targets` talk to a running controller over HTTP, as any
other API client would. The URL and token come from --api-url/--token, else
CHRONOS_API_URL and CHRONOS_API_TOKEN, else http://127.0.0.1:7557 and the admin token
`chronos up` keeps in its data directory.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import aiohttp

from schemas.config import Config

DEFAULT_URL = "http://127.0.0.1:7557"


class ClientError(Exception):
    """A problem to print without a traceback; `status` is the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--api-url and --token."""
    parser.add_argument("--api-url", help=f"the API (default: $CHRONOS_API_URL or {DEFAULT_URL})")
    parser.add_argument(
        "--token", help="API token (default: $CHRONOS_API_TOKEN or <data_dir>/admin-token)"
    )


def connection(config: Config, args: argparse.Namespace) -> tuple[str, str]:
    """The API's URL and the token to use, from options, environment or data_dir."""
    url = args.api_url or os.environ.get("CHRONOS_API_URL") or DEFAULT_URL
    token = args.token or os.environ.get("CHRONOS_API_TOKEN")
    if not token:
        path = config.data_dir / "admin-token"
        if path.exists():
            token = path.read_text().strip()
    if not token:
        raise ClientError(
            "no API token: give --token, set CHRONOS_API_TOKEN, or run `chronos up`"
            " (which keeps one in its data directory)",
            status=2,
        )
    return url, token


class ApiClient:
    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))

    async def close(self) -> None:
        await self.http.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        text: str | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """The JSON answer; a ClientError with the API's message otherwise. `text` sends a
        body as it is (an import file), `body` as JSON."""
        data = text if text is not None else (None if body is None else json.dumps(body))
        headers = {**self.headers, "Content-Type": content_type}
        try:
            async with self.http.request(method, self.base + path, data=data, headers=headers) as r:
                answer = await r.text()
                payload = json.loads(answer) if answer else None
                if r.status >= 400:
                    raise ClientError(_message(payload, r.status))
                return payload
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ClientError(f"cannot reach the API at {self.base}: {exc}") from None
        except json.JSONDecodeError:
            raise ClientError(f"the API at {self.base} did not answer JSON") from None


def _message(payload: Any, status: int) -> str:
    error = payload.get("error", {}) if isinstance(payload, dict) else {}
    message = error.get("message") or f"HTTP {status}"
    code = error.get("code")
    problems = (error.get("details") or {}).get("problems") or []
    lines = [f"{message} ({code})" if code else message]
    for problem in problems[:20]:
        where = problem.get("name") or problem.get("target") or problem.get("field")
        lines.append(f"  {where}: {problem.get('message') or problem.get('problem')}")
    if len(problems) > 20:
        lines.append(f"  ... and {len(problems) - 20} more")
    return "\n".join(lines)
