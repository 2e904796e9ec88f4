"""The one error mapping: the error catalogue, other exceptions, and a database that is down."""

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import IntegrityError, OperationalError, connection
from django.http import UnreadablePostError

from redemption import exceptions as exc
from redemption.api.errors import error_response
from tests.api.conftest import mint

# The catalogue clients are promised, copied by hand so that a change on either side fails.
CATALOGUE = """
REDEMPTION_CODE_NOT_FOUND 40395 404
REDEMPTION_CODE_VERSION_MISMATCH 40396 409
REDEMPTION_CODE_ACTIVE 40397 409
REDEMPTION_CODE_NOT_ACTIVE 40398 409
REDEMPTION_CODE_TYPE_NOT_FOUND 40399 404
REDEMPTION_CODE_INVALID 40400 409
REDEMPTION_CODE_REDEEMED 40401 409
REDEMPTION_CODE_REDEEMED_BY_SELF 40402 409
REDEMPTION_CODE_REDEEMED_BY_OTHER 40403 409
INVALID_SCAN_CODE 40569 400
INVALID_PARAMETER_VALUE 40660 400
REDEMPTION_IN_PROGRESS 40750 409
REDEMPTION_FAILED 40751 409
REDEMPTION_FAILED_MAX_RETRIES 40752 409
REDEMPTION_CODE_TYPE_DISABLED 40753 409
REDEMPTION_CODE_TYPE_MISMATCH 40755 409
REDEMPTION_CODE_SCRIPT_FAILURE 40756 502
REDEMPTION_CODE_NOT_IN_PROGRESS 40758 409
REDEMPTION_CODE_ATTEMPT_MISMATCH 40760 409
REDEMPTION_CODE_ASYNC_BAD_RESPONSE 40761 400
REDEMPTION_CODE_BY_ID_NOT_FOUND 40762 404
REDEMPTION_CODE_ATTEMPTED_BY_REDEEMED_BY_MISMATCH 40763 409
REDEMPTION_CODE_MAX_FAILED_EXCEEDED_FOR_USER 40765 429
REDEMPTION_CODE_TYPE_NOT_ASYNC 40767 409
REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT 40768 409
REDEMPTION_CODE_NOT_YET_VALID 40776 409
REDEMPTION_CODE_EXPIRED 40777 409
REDEMPTION_CODE_TYPE_CODE_USE_ERROR 40775 409
MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED 40778 409
REDEMPTION_CODE_TYPE_MUST_BE_SINGLE_USE 40779 409
REDEMPTION_CODE_DUPLICATE 40801 409
REDEMPTION_CODE_TYPE_DUPLICATE 40802 409
INSUFFICIENT_CODE_SPACE 40803 400
REDEMPTION_CODE_TYPE_NOT_EMPTY 40805 409
AUTHENTICATION_REQUIRED 40810 401
INVALID_CREDENTIALS 40811 401
PERMISSION_DENIED 40812 403
IDEMPOTENCY_KEY_IN_USE 40820 409
IDEMPOTENCY_KEY_REUSED 40821 422
REQUEST_TOO_LARGE 40830 413
METHOD_NOT_ALLOWED 40831 405
SERVICE_UNAVAILABLE 40832 503
"""
CATALOGUE = {
    code: (int(reason), int(status))
    for code, reason, status in (line.split() for line in CATALOGUE.strip().splitlines())
}


def _envelope(response) -> tuple[int, str, int, dict]:
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "reasonCode", "message", "details"}
    assert error["message"]
    return response.status_code, error["code"], error["reasonCode"], error["details"]


def test_every_error_of_the_catalogue_maps_to_its_status_and_reason_code():
    by_code = {cls.code: cls for cls in exc.ALL_ERRORS}

    assert set(CATALOGUE) <= set(by_code)
    for code, (reason, status) in CATALOGUE.items():
        assert _envelope(error_response(by_code[code]()))[:3] == (status, code, reason)


def test_details_are_passed_through_and_retry_after_becomes_a_header():
    response = error_response(exc.MaxFailedExceededError(details={"retryAfterSeconds": 42}))
    assert _envelope(response)[3] == {"retryAfterSeconds": 42}
    assert response["Retry-After"] == "42"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermissionDenied(), (403, "PERMISSION_DENIED", 40812)),
        (exc.PermissionDeniedError(), (403, "PERMISSION_DENIED", 40812)),
        (RequestDataTooBig(), (413, "REQUEST_TOO_LARGE", 40830)),
        (UnreadablePostError("reset"), (400, "INVALID_PARAMETER_VALUE", 40660)),
        (OperationalError("connection refused"), (503, "SERVICE_UNAVAILABLE", 40832)),
    ],
)
def test_framework_exceptions_map_to_the_catalogue(error, expected):
    assert _envelope(error_response(error))[:3] == expected


@pytest.mark.parametrize("error", [RuntimeError("boom"), IntegrityError("unexpected"), KeyError()])
def test_anything_unexpected_is_a_logged_500_with_the_envelope(error, caplog):
    with caplog.at_level(logging.ERROR, logger="redemption.api"):
        response = error_response(error)

    assert _envelope(response)[:2] == (500, "INTERNAL_ERROR")
    assert caplog.records and caplog.records[-1].exc_info[1] is error


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _database_unreachable(tmp_path: Path) -> Iterator[None]:
    """Point the default connection at a database that cannot be opened, then restore it."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = str(tmp_path / "missing" / "db.sqlite3")
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_a_database_that_cannot_be_reached_is_503(api, server_secret, tmp_path):
    token = mint()
    with _database_unreachable(tmp_path):
        server = api.as_(server_secret).get("/api/v1/server/code-types")
        client = api.as_(token).post("/api/v1/client/redeem", {"scanCode": "ABCD-EFGH"})

    for response in [server, client]:
        assert (response.status, response.code) == (503, "SERVICE_UNAVAILABLE")
        assert response.error["reasonCode"] == 40832
        # Clients (and brainCloud's official library) retry a 503 after Retry-After.
        assert response["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)
        assert response.error["details"]["retryAfterSeconds"] == settings.OUTAGE_RETRY_AFTER_SECONDS


@pytest.mark.django_db(transaction=True)
def test_readyz_answers_an_unreachable_database_with_the_api_error_response(api, tmp_path):
    with _database_unreachable(tmp_path):
        response = api.get("/readyz")

    assert response.status == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "SERVICE_UNAVAILABLE",
            "reasonCode": 40832,
            "message": "The database is unreachable.",
            "details": {"retryAfterSeconds": 5},
        }
    }
