"""Structured logs: one JSON object per line, with the event's ids as fields.

Code logs `log.info("task queued", extra={"device_id": ..., "task_id": ...})`; this turns
that into `{"ts": ..., "level": "info", "logger": ..., "msg": "task queued",
"device_id": ..., "task_id": ...}`. Fields whose names say they hold a secret are
redacted here as a last line of defence; code is expected not to pass them at all.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
_SECRET_KEY = re.compile(r"(?i)(password|passphrase|secret|token|authorization|psk)")
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = REDACTED if _SECRET_KEY.search(key) else value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """For a terminal: the message, then its fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{k}={REDACTED if _SECRET_KEY.search(k) else v}"
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")
        )
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = f"{line}  {fields}" if fields else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what our own lines say; keep its errors only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # asyncssh tells of every connection, channel and auth step at INFO: our sessions log
    # what matters (with the target id) themselves.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
