"""Fulfilment webhooks: build and sign the request, call it, and read the reply.

Nothing here touches the database; callers make sure no transaction is open while calling.
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

SIGNATURE_HEADER = "X-Redemption-Signature"
MAX_REPLY_BYTES = 64 * 1024
MAX_CALL_SECONDS = 10
REPLY_KEYS = {"success", "complete", "customRedemptionInfo", "errorCode", "errorMsg"}


@dataclass(frozen=True)
class Reply:
    """What the webhook (or an async-response call) said about one attempt."""

    success: bool
    complete: bool
    custom_redemption_info: dict[str, Any] | None = None
    error_code: str | None = None
    error_msg: str | None = None
    transport_error: str | None = None
    raw: dict[str, Any] | None = field(default=None)

    @property
    def is_transport_failure(self) -> bool:
        return self.transport_error is not None


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Return the signature header value `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """Check a signature header against the body (what a receiver does)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def parse_reply(data: Any) -> Reply:
    """Read a reply object; raise ValueError when it is not of the documented shape."""
    if not isinstance(data, dict):
        raise ValueError("reply must be a JSON object")
    unknown = set(data) - REPLY_KEYS
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    success, complete = data.get("success"), data.get("complete", False)
    if not isinstance(success, bool) or not isinstance(complete, bool):
        raise ValueError("success and complete must be true or false")
    info = data.get("customRedemptionInfo")
    if info is not None and not isinstance(info, dict):
        raise ValueError("customRedemptionInfo must be an object")
    error_code = data.get("errorCode")
    if error_code is not None and not isinstance(error_code, (str, int)):
        raise ValueError("errorCode must be a string or number")
    error_msg = data.get("errorMsg")
    if error_msg is not None and not isinstance(error_msg, str):
        raise ValueError("errorMsg must be a string")
    return Reply(
        success=success,
        complete=complete,
        custom_redemption_info=info,
        error_code=None if error_code is None else str(error_code)[:100],
        error_msg=error_msg[:2000] if error_msg else None,
        raw=data,
    )


def call(*, url: str, secret: str, payload: dict[str, Any], timeout_seconds: int) -> Reply:
    """POST the signed payload and return the reply; transport problems become a Reply too."""
    assert not connection.in_atomic_block, "never call a webhook inside a transaction"
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    request = urllib.request.Request(  # noqa: S310 - URL is an http(s) URL validated on save
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "redemption-portal-fulfilment/1",
            SIGNATURE_HEADER: sign(secret, body),
        },
    )
    limit = max(1, min(timeout_seconds, MAX_CALL_SECONDS))
    try:
        with urllib.request.urlopen(request, timeout=limit) as response:  # noqa: S310
            raw = response.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as err:
        return _failure(f"HTTP {err.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        return _failure(f"transport error: {reason}")
    if len(raw) > MAX_REPLY_BYTES:
        return _failure("reply larger than 64 KB")
    try:
        return parse_reply(json.loads(raw))
    except (ValueError, UnicodeDecodeError) as err:
        return _failure(f"malformed reply: {err}")


def _failure(message: str) -> Reply:
    return Reply(success=False, complete=True, transport_error=message[:500])
