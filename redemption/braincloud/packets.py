"""brainCloud packets, whatever the endpoint: parsing the envelope, building response entries,
turning our errors into wire entries, and the resend slot a session keeps.

A packet is `{"packetId": n, "sessionId": "…", "messages": [{service, operation, data}, …]}`.
The answer holds one entry per message, in order: `{"status": 200, "data": …}` on success,
`{"status": 400|403|413|429, "reason_code": n, "status_message": "…", "severity": "ERROR"}`
otherwise. Nothing here knows which kind of session (client or S2S) holds the resend slot.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from redemption import exceptions as exc
from redemption import rules

MAX_PACKET_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024
# An oversized packet is kept up to this size to count its messages, then only read.
COUNT_MAX_BYTES = 8 * 1024 * 1024

# brainCloud's own session reason codes (no JSON API twin, so not RedemptionErrors).
SESSION_EXPIRED = 40303
NO_SESSION = 40304
SESSION_LOGGED_OUT = 40356
S2S_SESSION_EXPIRED = 40365

# A resend whose first copy is still running after this long is run again (the first died).
RESEND_TAKEOVER_SECONDS = 30


class SessionError(Exception):
    """The packet's session is missing, unknown, expired or logged out (403 in the packet)."""

    def __init__(self, reason_code: int, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


def no_session() -> SessionError:
    return SessionError(NO_SESSION, "No session")


def session_expired() -> SessionError:
    return SessionError(SESSION_EXPIRED, "Session expired")


def session_logged_out() -> SessionError:
    return SessionError(SESSION_LOGGED_OUT, "Session logged out")


@dataclass(frozen=True)
class Message:
    """One call of a packet; `problem` says why it cannot be run (then it gets a 400 entry)."""

    service: str
    operation: str
    data: dict[str, Any]
    problem: str | None = None


@dataclass(frozen=True)
class Packet:
    """A parsed packet: its id (None when absent), session id and messages."""

    packet_id: int | None
    session_id: str | None
    messages: tuple[Message, ...]
    body: dict[str, Any]


def read_body(request: HttpRequest) -> tuple[bytes | None, bool]:
    """The body, and whether it is over the packet limit. An oversized body is kept up to
    COUNT_MAX_BYTES to count its messages; past that it is None, and what is left unread is
    drained by portal.drain after the answer, within its bounds (no worker held for long)."""
    parts: list[bytes] = []
    size = 0
    while chunk := request.read(READ_CHUNK):
        size += len(chunk)
        if size > COUNT_MAX_BYTES:
            return None, True
        parts.append(chunk)
    return b"".join(parts), size > MAX_PACKET_BYTES


def json_object(raw: bytes) -> dict[str, Any]:
    """A packet body as one JSON object of storable values; else INVALID_PARAMETER_VALUE."""
    try:
        body = rules.json_loads_strict(raw)
    except ValueError as err:
        raise exc.invalid_fields({"body": f"is not JSON: {err}"}) from None
    problem = rules.json_value_problem(body)
    if problem:
        raise exc.invalid_fields({"body": problem})
    if not isinstance(body, dict):
        raise exc.invalid_fields({"body": "must be a JSON object"})
    return body


def parse(raw: bytes) -> Packet:
    """Parse a packet body (JSON whatever the Content-Type); raise INVALID_PARAMETER_VALUE
    when it is no packet at all (its messages cannot be counted)."""
    body = json_object(raw)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise exc.invalid_fields({"messages": "must be an array of messages"})
    packet_id = body.get("packetId")
    if not rules.is_whole_number(packet_id):
        packet_id = None
    session_id = body.get("sessionId")
    if not isinstance(session_id, str) or not session_id:
        session_id = None
    return Packet(
        packet_id=packet_id,
        session_id=session_id,
        messages=tuple(_message(m) for m in messages),
        body=body,
    )


def _message(value: Any) -> Message:
    if not isinstance(value, dict):
        return Message("", "", {}, problem="a message must be a JSON object")
    service, operation, data = value.get("service"), value.get("operation"), value.get("data")
    if not isinstance(service, str) or not isinstance(operation, str):
        return Message("", "", {}, problem="a message needs a service and an operation")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return Message(service, operation, {}, problem="data must be a JSON object")
    return Message(service, operation, data)


def count_messages(raw: bytes) -> int:
    """How many messages a packet we will not run holds (1 when that cannot be told)."""
    try:
        body = rules.json_loads_strict(raw)
    except ValueError:
        return 1
    messages = body.get("messages") if isinstance(body, dict) else None
    return len(messages) if isinstance(messages, list) and messages else 1


# --- response entries -------------------------------------------------------------------------


def ok(data: Any) -> dict[str, Any]:
    """A success entry."""
    return {"status": 200, "data": data}


def error_entry(*, status: int, reason_code: int, message: str) -> dict[str, Any]:
    """An error entry, shaped as the official clients build their own local errors."""
    return {
        "status": status,
        "reason_code": reason_code,
        "status_message": message,
        "severity": "ERROR",
    }


def wire_status(error: exc.RedemptionError) -> int:
    """The status an error entry carries: 429 rate limit, 413 too large, 403 auth, else 400."""
    if error.http_status in {413, 429}:
        return error.http_status
    if error.http_status in {401, 403}:
        return 403
    return 400


def entry_for_error(error: exc.RedemptionError | SessionError) -> dict[str, Any]:
    """The wire entry for one of our errors, with its §10 reason code."""
    if isinstance(error, SessionError):
        return error_entry(status=403, reason_code=error.reason_code, message=error.message)
    return error_entry(
        status=wire_status(error), reason_code=error.reason_code, message=error.message
    )


def too_large_entries(raw: bytes | None) -> list[dict[str, Any]]:
    """One 413 / REQUEST_TOO_LARGE entry per message of an oversized packet (else one)."""
    count = 1 if raw is None else count_messages(raw)
    return [entry_for_error(exc.RequestTooLargeError())] * count


# --- the resend slot --------------------------------------------------------------------------
#
# A session model offers the slot by extending models.ResendSlot: `last_packet_id` (int, null),
# `last_response` (text: the answer's JSON exactly as sent, so a replay is byte for byte the
# same; null while that packet runs) and `last_packet_at` (datetime, null).
# The functions take a queryset holding just that session's row, so they fit every kind.


@dataclass(frozen=True)
class Claim:
    """What to do with a packet: run it, replay the stored answer, or tell the client to wait."""

    action: str  # RUN | REPLAY | BUSY
    response: str | None = None  # REPLAY: the stored answer, byte for byte


RUN, REPLAY, BUSY = "run", "replay", "busy"


def packet_claim(slot: QuerySet[Any], packet_id: int | None, *, now: datetime) -> Claim:
    """Claim `packet_id` for this session: RUN a new packet, REPLAY a resend's stored answer,
    or BUSY while the first copy of a resend is still running (the client retries later)."""
    if packet_id is None:
        return Claim(RUN)
    if slot.exclude(last_packet_id=packet_id).update(
        last_packet_id=packet_id, last_response=None, last_packet_at=now
    ):
        return Claim(RUN)
    row = slot.values("last_response", "last_packet_at").first()
    if row is None:  # the session went away meanwhile: let the caller find that out
        return Claim(RUN)
    if row["last_response"] is not None:
        return Claim(REPLAY, row["last_response"])
    started = row["last_packet_at"]
    stale = started is None or started <= now - timedelta(seconds=RESEND_TAKEOVER_SECONDS)
    if stale and slot.filter(
        last_packet_id=packet_id, last_response__isnull=True, last_packet_at=started
    ).update(last_packet_at=now):
        return Claim(RUN)
    return Claim(BUSY)


def packet_remember(slot: QuerySet[Any], packet_id: int | None, response: str) -> None:
    """Store the answer to `packet_id` so that a resend of it gets the same answer."""
    if packet_id is not None:
        slot.filter(last_packet_id=packet_id).update(last_response=response)


def packet_forget(slot: QuerySet[Any], packet_id: int | None) -> None:
    """Release a claimed packet that produced no answer (outage): its resend runs again."""
    if packet_id is not None:
        slot.filter(last_packet_id=packet_id, last_response__isnull=True).update(
            last_packet_id=None, last_packet_at=None
        )
