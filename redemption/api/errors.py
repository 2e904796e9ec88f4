"""The one mapping from exceptions to the JSON error envelope, used by the API and /readyz."""

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, UnreadablePostError

from redemption import exceptions as exc
from redemption.records import code_record

logger = logging.getLogger("redemption.api")

JSON = "application/json"


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    """Serialise `body` as compact UTF-8 JSON."""
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return HttpResponse(payload.encode(), status=status, content_type=JSON, headers=headers)


def as_redemption_error(error: BaseException) -> exc.RedemptionError:
    """Translate any exception into the domain error the client will see."""
    if isinstance(error, exc.RedemptionError):
        return error
    if isinstance(error, PermissionDenied):
        return exc.PermissionDeniedError()
    if isinstance(error, RequestDataTooBig):
        return exc.RequestTooLargeError()
    if isinstance(error, UnreadablePostError):  # the client went away mid-body
        return exc.invalid_fields({"body": "could not be read to the end"})
    if isinstance(error, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", error.__class__.__name__)
        return service_unavailable()
    logger.error("unexpected error in the JSON API", exc_info=error)
    return exc.InternalError()


def service_unavailable(message: str | None = None) -> exc.ServiceUnavailableError:
    """SERVICE_UNAVAILABLE with the delay a client should wait (sent as Retry-After)."""
    return exc.ServiceUnavailableError(
        message, details={"retryAfterSeconds": settings.OUTAGE_RETRY_AFTER_SECONDS}
    )


def error_body(error: exc.RedemptionError) -> dict[str, Any]:
    """The envelope `{"error": {code, reasonCode, message, details}}` for one domain error."""
    details = dict(error.details)
    record = error.record if isinstance(error, exc.RedeemedBySelfError) else None
    if record is not None:
        details["record"] = code_record(record)
    return {
        "error": {
            "code": error.code,
            "reasonCode": error.reason_code,
            "message": error.message,
            "details": details,
        }
    }


def error_response(error: BaseException) -> HttpResponse:
    """Build the JSON error response (status, envelope, headers) for any exception."""
    err = as_redemption_error(error)
    headers: dict[str, str] = {}
    retry_after = err.details.get("retryAfterSeconds")
    if isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    if err.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return json_response(error_body(err), status=err.http_status, headers=headers)
