"""Fulfilment webhooks: build and sign the request, call it, and read the reply.

Nothing here touches the database; callers make sure no transaction is open while calling.
Every call checks its target again (`webhook_targets`) and connects to exactly the addresses
checked. Two seams let tests prove that without the network: `open_connection` (how a socket
to a checked address is opened) and `tls_context` (which certificates a call trusts).
"""

import contextlib
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from redemption import rules, webhook_targets

SIGNATURE_HEADER = "X-Redemption-Signature"
MAX_REPLY_BYTES = 64 * 1024
MAX_CALL_SECONDS = 10
REPLY_KEYS = frozenset({"success", "complete", "customRedemptionInfo", "errorCode", "errorMsg"})


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


def call_seconds(timeout_seconds: int) -> int:
    """The connect+read budget of one webhook call: min(timeoutSeconds, 10), at least 1."""
    return max(1, min(timeout_seconds, MAX_CALL_SECONDS))


def sign(
    secret: str, body: bytes, timestamp: int | None = None, *, also: Sequence[str] = ()
) -> str:
    """Return the signature header `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.

    Each secret in `also` (a rotated-out secret in its grace period) adds one more `v1=`.
    """
    t = int(time.time()) if timestamp is None else timestamp
    macs = [_mac(s, body, t) for s in (secret, *also)]
    return f"t={t}," + ",".join(f"v1={mac}" for mac in macs)


def _mac(secret: str, body: bytes, t: int) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """Check a signature header against the body (what a receiver does).

    True when the timestamp is recent and any of the header's `v1=` values matches.
    """
    timestamp, signatures = None, []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    try:
        t = int(timestamp or "")
    except ValueError:
        return False
    if abs(time.time() - t) > tolerance:
        return False
    expected = _mac(secret, body, t)
    return any(hmac.compare_digest(expected, s) for s in signatures)


def parse_reply(data: Any, *, strict: bool = True) -> Reply:
    """Read a reply object; raise ValueError when it is not of the documented shape.

    `strict` refuses unknown fields (the async-response API); webhook replies are read with
    strict=False so that a receiver adding its own fields does not fail a redemption.
    """
    if not isinstance(data, dict):
        raise ValueError("reply must be a JSON object")
    problem = rules.json_value_problem(data)
    if problem:
        raise ValueError(f"reply: {problem}")
    unknown = set(data) - REPLY_KEYS
    if strict and unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    success = data.get("success")
    if not isinstance(success, bool):
        raise ValueError("success must be true or false")
    complete = data.get("complete")
    if complete is None and not success and not (strict and "complete" in data):
        complete = True  # a failure is final whether or not the receiver says so
    if not isinstance(complete, bool):
        raise ValueError("complete must be true or false")
    info = data.get("customRedemptionInfo")
    if info is not None:
        if not isinstance(info, dict):
            raise ValueError("customRedemptionInfo must be an object")
        if not rules.json_fits(rules.compact_json(info)):
            raise ValueError(f"customRedemptionInfo must be {rules.JSON_OBJECT_RULE}")
    error_code = data.get("errorCode")
    if isinstance(error_code, float) and error_code.is_integer():
        error_code = int(error_code)  # JSON: 5.0 is the whole number 5
    if error_code is not None and (
        isinstance(error_code, bool) or not isinstance(error_code, str | int)
    ):
        raise ValueError("errorCode must be a string or a whole number")
    error_msg = data.get("errorMsg")
    if error_msg is not None and not isinstance(error_msg, str):
        raise ValueError("errorMsg must be a string")
    return Reply(
        success=success,
        complete=complete,
        custom_redemption_info=info,
        error_code=None if error_code is None else str(error_code)[:100],
        error_msg=error_msg[:2000] if error_msg else None,
        raw={key: data[key] for key in REPLY_KEYS if key in data},
    )


# The seams: how a socket to one checked address is opened, and the TLS settings of a call.
open_connection = socket.create_connection


def tls_context() -> ssl.SSLContext:
    """The TLS settings of a webhook call: the system's trusted CAs, hostname checked."""
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to the checked addresses; the Host header still names the host."""

    def __init__(self, target: webhook_targets.Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.addresses = target.addresses

    def connect(self) -> None:
        self.sock = _open_any(self.addresses, self.port, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """As above with TLS: SNI and the certificate check use the host name, not the address."""

    def __init__(self, target: webhook_targets.Target, timeout: float) -> None:
        super().__init__(target, timeout)
        self.tls = tls_context()
        self.default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        super().connect()
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.host)


def _open_any(addresses: Sequence[str], port: int, timeout: Any) -> socket.socket:
    """Connect to the first checked address that answers (as socket.create_connection does)."""
    last: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return open_connection((address, port), timeout)
        except OSError as err:
            last = err
    raise last


def call(
    *,
    url: str,
    secret: str,
    payload: dict[str, Any],
    timeout_seconds: int,
    previous_secrets: Sequence[str] = (),
) -> Reply:
    """POST the signed payload and return the reply; transport problems become a Reply too.

    The whole exchange (DNS lookup, connect, send, headers, body) ends within
    call_seconds(timeout_seconds): the lookup runs against that budget and a watchdog shuts
    the socket down, so a server that trickles bytes cannot hold us longer. The target is
    checked again here and the connection goes to exactly the addresses checked. Redirects are
    not followed and no proxy is used. `previous_secrets` (in their grace period after a
    rotation) each add a signature to the header.
    """
    if connection.in_atomic_block:
        raise RuntimeError("a webhook must never be called inside a database transaction")
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    limit = call_seconds(timeout_seconds)
    deadline = time.monotonic() + limit
    try:
        target = webhook_targets.target(url, seconds=limit)
    except webhook_targets.TargetRefused as err:
        return _failure(f"refused: the fulfilment URL is not allowed: {err}")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return _failure(f"no reply within {limit} s")
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target, timeout=remaining)
    else:
        conn = _PinnedHTTPConnection(target, timeout=remaining)
    timed_out = threading.Event()
    watchdog = threading.Timer(remaining, _abort, args=(conn, timed_out))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "redemption-portal-fulfilment/1",
                SIGNATURE_HEADER: sign(secret, body, also=previous_secrets),
            },
        )
        response = conn.getresponse()
        status = response.status
        raw = response.read(MAX_REPLY_BYTES + 1)
    except (OSError, http.client.HTTPException) as err:
        if timed_out.is_set() or isinstance(err, TimeoutError):
            return _failure(f"no reply within {limit} s")
        return _failure(f"transport error: {type(err).__name__}: {err}")
    finally:
        watchdog.cancel()
        conn.close()
    if timed_out.is_set():
        return _failure(f"no reply within {limit} s")
    if not 200 <= status < 300:
        return _failure(f"HTTP {status}")
    if len(raw) > MAX_REPLY_BYTES:
        return _failure("reply larger than 64 KB")
    try:
        return parse_reply(rules.json_loads_strict(raw), strict=False)
    except (ValueError, UnicodeDecodeError) as err:
        return _failure(f"malformed reply: {err}")


def _abort(conn: http.client.HTTPConnection, timed_out: threading.Event) -> None:
    timed_out.set()
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _failure(message: str) -> Reply:
    return Reply(success=False, complete=True, transport_error=message[:500])
