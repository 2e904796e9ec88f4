"""Log lines: plain text or one JSON object each, carrying the id of the request being handled.

`settings.LOGGING` puts `RequestContextFilter` and one of the formatters below on the root
logger's handler (and on gunicorn's, through gunicorn.conf.py), so every line written while a
request is handled names that request, whichever module wrote it.

What is logged: the access log (method, path, status, duration, bytes, client address, request
id), the worker's task lines, jobs starting and ending (id, kind, code type, counts), webhook
calls (code type, record id, attempt, result, duration), warnings and errors. Never headers,
bodies, tokens, keys, secrets or query strings; scan codes in URL paths are masked.
"""

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from redemption import rules

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "X-Request-Id"
# The id is also kept in the request's WSGI environ, for what is logged around the middleware:
# Django's "Not Found: …" warnings (written after the middleware returned) and the access log.
REQUEST_ID_ENVIRON = "portal.request_id"

# Where a URL path carries a scan code: the JSON API's /server/codes/{scanCode} and the portal's
# /monitoring/redemption-codes/{canonical}/ (its "test-code" page is not a code).
_SCAN_CODE_IN_PATH = re.compile(
    r"(?P<lead>/server/codes/|/monitoring/redemption-codes/(?!test-code(?:/|$)))"
    r"(?P<code>[^/?#\s\"]+)"
)
# Records whose message is a request line or a path (Django's 4xx/5xx warnings, runserver).
_PATH_LOGGERS = frozenset({"django.request", "django.server"})
_PLAIN = (str, int, float, bool, type(None))
# LogRecord's own attributes; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


def request_id_for(incoming: str | None) -> str:
    """The id of a request: the caller's X-Request-Id when it is well formed, else a new one."""
    if rules.is_request_id(incoming):
        return incoming
    return uuid.uuid4().hex


def mask_scan_code(code: str) -> str:
    """Keep the first and last 4 characters of a scan code (2 when shorter than 12)."""
    keep = 4 if len(code) >= 12 else 2
    if len(code) <= 2 * keep:
        return "*" * len(code)
    return code[:keep] + "*" * (len(code) - 2 * keep) + code[-keep:]


def mask_paths(text: str) -> str:
    """`text` with every scan code that sits in a URL path masked."""
    return _SCAN_CODE_IN_PATH.sub(lambda m: m.group("lead") + mask_scan_code(m.group("code")), text)


class RequestContextFilter(logging.Filter):
    """Stamp each record with the current request id and mask scan codes in request paths."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request = getattr(record, "request", None)
            environ = getattr(request, "META", None) or {}
            record.request_id = REQUEST_ID.get() or environ.get(REQUEST_ID_ENVIRON)
        if record.name in _PATH_LOGGERS:
            record.msg = mask_paths(record.getMessage())
            record.args = None
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            # Extras of plain types only: Django adds the request object itself, whose text
            # would repeat the unmasked path.
            if key not in _RECORD_ATTRIBUTES and isinstance(value, _PLAIN):
                line[key] = value
        line["process"] = record.process
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger [request id] message`, the request id only while handling a request."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        context = f" [{request_id}]" if request_id else ""
        text = f"{_timestamp(record)} {record.levelname} {record.name}{context} "
        text += record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


def access_fields(
    *,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    response_bytes: int | None,
    remote_addr: str,
    request_id: str | None,
) -> dict[str, Any]:
    """The fields of one access-log line (the path's scan codes masked, no query string)."""
    return {
        "method": method,
        "path": mask_paths(path),
        "status": status,
        "duration_ms": round(duration_ms, 1),
        "bytes": response_bytes,
        "remote_addr": remote_addr,
        "request_id": request_id,
    }


def access_message(fields: dict[str, Any]) -> str:
    """The access-log line as text: `addr "METHOD path" status bytes duration`."""
    return (
        f'{fields["remote_addr"]} "{fields["method"]} {fields["path"]}" {fields["status"]} '
        f"{fields['bytes'] if fields['bytes'] is not None else '-'} {fields['duration_ms']}ms"
    )
