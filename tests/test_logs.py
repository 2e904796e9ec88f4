"""Request ids and log lines: X-Request-Id on every response, the id in every line, JSON or text.

Real processes (gunicorn's access log, the worker) are in tests/test_metrics_processes.py.
"""

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from redemption import logs
from redemption.middleware import RequestIdMiddleware
from tests.processes import ROOT


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Lines written through the portal's filter and `formatter`, as the root handler does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestContextFilter())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --- X-Request-Id -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/healthz", "/no-such-page", "/api/v1/nothing", "/", "/static/redemption/portal.css"]
)
def test_every_response_carries_a_fresh_request_id(client, path):
    first = client.get(path)
    second = client.get(path)

    assert len(first["X-Request-Id"]) == 32
    assert first["X-Request-Id"] != second["X-Request-Id"]


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc", True),
        ("A.b_c-9" * 9 + "X", True),  # 64 characters
        ("A.b_c-9" * 9 + "XY", False),  # 65
        ("", False),
        ("has space", False),
        ("semi;colon", False),
        ("new\nline", False),
        ("café", False),
    ],
)
def test_an_incoming_request_id_is_kept_only_when_well_formed(client, incoming, kept):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)

    if kept:
        assert response["X-Request-Id"] == incoming
    else:
        assert response["X-Request-Id"] != incoming
        assert len(response["X-Request-Id"]) == 32


@pytest.mark.django_db
def test_every_line_written_for_a_request_names_it(client):
    with captured(logs.JsonFormatter()) as stream:
        client.get("/api/v1/server/codes/LIVE-CODE-0001-ABCD", HTTP_X_REQUEST_ID="req-1")
        client.get("/no-such-page", HTTP_X_REQUEST_ID="req-2")
        logging.getLogger("redemption.test").warning("between requests")

    lines = json_lines(stream)
    by_id = {line.get("request_id"): line for line in lines}
    assert by_id["req-1"]["logger"] == "django.request"
    assert by_id["req-1"]["message"] == "Unauthorized: /api/v1/server/codes/LIVE***********ABCD"
    assert by_id["req-2"]["message"] == "Not Found: /no-such-page"
    assert lines[-1]["message"] == "between requests" and "request_id" not in lines[-1]


def test_lines_written_while_a_response_streams_name_its_request():
    def rows():
        logging.getLogger("redemption.export").warning("row one")
        yield b"one\n"
        logging.getLogger("redemption.export").warning("row two")
        yield b"two\n"

    middleware = RequestIdMiddleware(lambda request: StreamingHttpResponse(rows()))
    request = RequestFactory().get("/export.csv", HTTP_X_REQUEST_ID="stream-7")

    with captured(logs.JsonFormatter()) as stream:
        response = middleware(request)
        body = b"".join(response.streaming_content)

    assert body == b"one\ntwo\n"
    assert [(line["message"], line["request_id"]) for line in json_lines(stream)] == [
        ("row one", "stream-7"),
        ("row two", "stream-7"),
    ]
    assert logs.REQUEST_ID.get() is None


# --- formats ----------------------------------------------------------------------------------


def test_json_lines_carry_time_level_logger_message_extras_and_the_traceback():
    middleware = RequestIdMiddleware(lambda request: _fail_and_log())
    with captured(logs.JsonFormatter()) as stream:
        middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="err-1"))

    (line,) = json_lines(stream)
    assert line["level"] == "ERROR"
    assert line["logger"] == "redemption.test"
    assert line["message"] == "could not finish job j-1"
    assert line["request_id"] == "err-1"
    assert line["job_id"] == "j-1" and line["rows"] == 3
    assert "not_plain" not in line
    assert line["time"].endswith("Z") and len(line["time"]) == len("2026-01-01T00:00:00.000Z")
    assert "ZeroDivisionError" in line["exception"]


def _fail_and_log() -> HttpResponse:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("redemption.test").exception(
            "could not finish job %s",
            "j-1",
            extra={"job_id": "j-1", "rows": 3, "not_plain": object()},
        )
    return HttpResponse("ok")


def test_text_lines_are_the_default_and_name_the_request():
    middleware = RequestIdMiddleware(lambda request: _fail_and_log())
    with captured(logs.TextFormatter()) as stream:
        middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="err-2"))

    first = stream.getvalue().splitlines()[0]
    assert first.endswith(" ERROR redemption.test [err-2] could not finish job j-1")
    assert "Traceback" in stream.getvalue()


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "portal.settings_test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("log_format", "is_json"), [("", False), ("text", False), ("json", True)])
def test_log_format_chooses_text_or_one_json_object_per_line(log_format, is_json):
    script = "import logging; logging.getLogger('redemption.x').warning('line one\\nline two')"
    result = _manage("shell", "-c", script, LOG_FORMAT=log_format)

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    if is_json:
        assert len(lines) == 1
        assert json.loads(lines[0])["message"] == "line one\nline two"
    else:
        assert lines[0].endswith(" WARNING redemption.x line one")


def test_an_unknown_log_format_stops_the_start():
    result = _manage("check", LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be 'text' or 'json'" in result.stderr


# --- what is never written --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("/api/v1/server/codes/K7QM-3XJ9-PP2A-77ZD", "/api/v1/server/codes/K7QM***********77ZD"),
        (
            "/api/v1/server/codes/ABCDEFGHJKLM/activate",
            "/api/v1/server/codes/ABCD****JKLM/activate",
        ),
        ("/api/v1/server/codes/SHORT1", "/api/v1/server/codes/SH**T1"),
        (
            "/monitoring/redemption-codes/K7QM3XJ9PP2A/",
            "/monitoring/redemption-codes/K7QM****PP2A/",
        ),
        ("/monitoring/redemption-codes/test-code/", "/monitoring/redemption-codes/test-code/"),
        ("/design/redemption-codes/xmas-2026/", "/design/redemption-codes/xmas-2026/"),
        (
            '"GET /api/v1/server/codes/ABCDEFGHJKLM HTTP/1.1" 404',
            '"GET /api/v1/server/codes/ABCD****JKLM HTTP/1.1" 404',
        ),
    ],
)
def test_scan_codes_in_paths_are_masked(text, masked):
    assert logs.mask_paths(text) == masked
