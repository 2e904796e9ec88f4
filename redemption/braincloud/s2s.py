"""`POST /s2sdispatcher`: brainCloud's server-to-server protocol (SPEC §11, "S2S endpoint").

- Sign-in packet `{"packetId": 0, "messages": [authenticationV2/AUTHENTICATE {appId,
  serverName, serverSecret}]}` → `{"packetId": 0, "messageResponses": [{"status": 200, "data":
  {"sessionId", "heartbeatSeconds"}}]}`.
- Later packets `{packetId, sessionId, messages}` → `{packetId (echoed), messageResponses}`,
  one entry per message; a resent packet id gets the stored answer, nothing runs again. An
  unknown or expired session (or a revoked key) → top level `{"status": 403, "reason_code":
  40365, …}` plus that entry in `messageResponses`, which makes the S2S library sign in again.
- The sessionless form, one object `{appId|gameId, serverName, serverSecret|gameSecret,
  service, operation, data}`, is answered with the one entry itself.

Always HTTP 200, except 503 (+ Retry-After) while the database is unreachable or while the
first copy of a resent packet still runs.
"""

import contextlib
import hmac
import json
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from redemption import exceptions as exc
from redemption import metrics, rules
from redemption.braincloud import packets, s2s_operations, s2s_sessions
from redemption.braincloud.s2s_sessions import Signed
from redemption.models import BraincloudApp
from redemption.services import keys

logger = logging.getLogger("redemption.braincloud")

ENDPOINT = "s2s"
AUTHENTICATE = ("authenticationV2", "AUTHENTICATE")
DATABASE_GONE = (OperationalError, InterfaceError)


def _json(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _answer(body: Any, *, status: int = 200) -> HttpResponse:
    """The answer; `body` as JSON, or as JSON text already (a replay, byte for byte)."""
    payload = body if isinstance(body, str) else _json(body)
    response = HttpResponse(payload.encode(), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _try_again(seconds: int) -> HttpResponse:
    error = exc.ServiceUnavailableError()
    response = _answer(
        packets.error_entry(status=503, reason_code=error.reason_code, message=error.message),
        status=503,
    )
    response["Retry-After"] = str(seconds)
    return response


def _label(service: str, operation: str) -> tuple[str, str]:
    key = (service, operation)
    known = key in s2s_operations.OPERATIONS or key in {AUTHENTICATE, s2s_operations.HEARTBEAT}
    return key if known else ("other", "other")


def _count(service: str, operation: str, outcome: str) -> None:
    service, operation = _label(service, operation)
    metrics.wire_message(endpoint=ENDPOINT, service=service, operation=operation, outcome=outcome)


@csrf_exempt
def s2sdispatcher(request: HttpRequest) -> HttpResponse:
    """Answer one S2S packet (or one sessionless request)."""
    if request.method != "POST":
        response = _answer(packets.entry_for_error(exc.MethodNotAllowedError()), status=405)
        response["Allow"] = "POST"
        return response
    raw, too_large = packets.read_body(request)
    try:
        if raw is None or too_large:
            _count("other", "other", "refused")
            entry = packets.entry_for_error(exc.RequestTooLargeError())
            return _answer({"packetId": None, "messageResponses": [entry]})
        return _dispatch(raw)
    except DATABASE_GONE as error:
        logger.warning("database unavailable: %s on /s2sdispatcher", type(error).__name__)
        return _try_again(settings.OUTAGE_RETRY_AFTER_SECONDS)


def _dispatch(raw: bytes) -> HttpResponse:
    try:
        body = packets.json_object(raw)
    except exc.RedemptionError as error:
        _count("other", "other", "refused")
        return _answer({"packetId": None, "messageResponses": [packets.entry_for_error(error)]})
    if "messages" not in body and "service" in body:
        return _answer(_sessionless(body))
    try:
        packet = packets.parse(raw)
    except exc.RedemptionError as error:
        _count("other", "other", "refused")
        return _answer(
            {"packetId": body.get("packetId"), "messageResponses": [packets.entry_for_error(error)]}
        )
    try:
        return _answer(_packet(packet))
    except _Busy:
        return _try_again(1)


def _sessionless(body: dict[str, Any]) -> dict[str, Any]:
    """One request carrying its own credentials: checked, run, answered with its entry."""
    service, operation = body.get("service"), body.get("operation")
    data = body.get("data")
    if not isinstance(service, str) or not isinstance(operation, str):
        error: exc.RedemptionError = exc.invalid_fields(
            {"message": "a request needs a service and an operation"}
        )
        _count("other", "other", "refused")
        return packets.entry_for_error(error)
    try:
        signed = credentials_check(
            app_id=body.get("appId", body.get("gameId")),
            server_name=body.get("serverName"),
            secret=body.get("serverSecret", body.get("gameSecret")),
        )
    except exc.RedemptionError as error:
        _count(service, operation, "refused")
        return packets.entry_for_error(error)
    message = packets.Message(service, operation, {} if data is None else data)
    if data is not None and not isinstance(data, dict):
        message = packets.Message(service, operation, {}, problem="data must be a JSON object")
    return _run(signed, message)


def _packet(packet: packets.Packet) -> dict[str, Any] | str:
    """Answer a packet: a sign-in, or messages in a live session."""
    now = timezone.now()
    if any((m.service, m.operation) == AUTHENTICATE for m in packet.messages):
        entries = [_sign_in(m, now) for m in packet.messages]
        return {"packetId": packet.packet_id, "messageResponses": entries}
    try:
        signed = s2s_sessions.s2s_session_use(session_id=packet.session_id, now=now)
    except packets.SessionError:
        # Unknown, expired, its key revoked or without wire-s2s: the library signs in again.
        entry = packets.entry_for_error(s2s_sessions.s2s_session_expired())
        for message in packet.messages:
            _count(message.service, message.operation, "refused")
        return {
            "packetId": packet.packet_id,
            **entry,
            "messageResponses": [entry] * max(1, len(packet.messages)),
        }
    assert signed.session is not None
    slot = s2s_sessions.s2s_session_slot(signed.session)
    claim = packets.packet_claim(slot, packet.packet_id, now=now)
    if claim.action == packets.REPLAY and claim.response is not None:
        for message in packet.messages:
            _count(message.service, message.operation, "replayed")
        return claim.response
    if claim.action == packets.BUSY:
        raise _Busy()
    try:
        entries = [_run(signed, m) for m in packet.messages]
    except DATABASE_GONE:
        with contextlib.suppress(*DATABASE_GONE):
            packets.packet_forget(slot, packet.packet_id)
        raise
    text = _json({"packetId": packet.packet_id, "messageResponses": entries})
    packets.packet_remember(slot, packet.packet_id, text)
    return text


class _Busy(Exception):
    """The first copy of a resent packet is still running."""


def credentials_check(*, app_id: object, server_name: object, secret: object) -> Signed:
    """The enabled app and the live server key these sign-in fields name; else the error."""
    app = None
    if isinstance(app_id, str) and rules.is_wire_app_id(app_id):
        app = BraincloudApp.objects.filter(app_id=app_id, is_enabled=True).first()
    if app is None:
        raise exc.WireBadSignatureError("appId names no enabled brainCloud app.")
    try:
        key = keys.server_key_authenticate(secret if isinstance(secret, str) else "")
    except exc.InvalidCredentialsError as error:
        raise exc.WireBadCredentialsError(
            "serverSecret is not a live server key. " + error.message
        ) from None
    if not isinstance(server_name, str) or not hmac.compare_digest(
        server_name.encode("utf-8", "surrogatepass"), key.name.encode()
    ):
        raise exc.WireBadCredentialsError("serverName is not the name of that server key.")
    keys.server_key_require_scope(key, rules.SCOPE_WIRE_S2S)
    return Signed(app=app, key=key)


def _sign_in(message: packets.Message, now: datetime) -> dict[str, Any]:
    if (message.service, message.operation) != AUTHENTICATE:
        _count(message.service, message.operation, "refused")
        return packets.entry_for_error(s2s_sessions.s2s_session_expired())
    data = message.data
    try:
        signed = credentials_check(
            app_id=data.get("appId", data.get("gameId")),
            server_name=data.get("serverName"),
            secret=data.get("serverSecret", data.get("gameSecret")),
        )
    except exc.RedemptionError as error:
        _count(*AUTHENTICATE, "error")
        return packets.entry_for_error(error)
    started = s2s_sessions.s2s_session_start(signed, now=now)
    _count(*AUTHENTICATE, "ok")
    return packets.ok(
        {
            "sessionId": started.session_id,
            "heartbeatSeconds": s2s_sessions.HEARTBEAT_SECONDS,
            "server_time": int(now.timestamp() * 1000),
        }
    )


def _error_entry(error: exc.RedemptionError) -> dict[str, Any]:
    """The wire entry of an error; a backend gets the fields at fault in its message too."""
    entry = packets.entry_for_error(error)
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if isinstance(fields, dict) and fields:
        problems = "; ".join(f"{name} {problem}" for name, problem in fields.items())
        entry["status_message"] = f"{entry['status_message']} {problems}"
    return entry


def _run(signed: Signed, message: packets.Message) -> dict[str, Any]:
    ctx = s2s_operations.S2SContext(app_id=signed.app.app_id, key=signed.key)
    try:
        if message.problem:
            raise exc.invalid_fields({"message": message.problem})
        entry = packets.ok(
            s2s_operations.run(ctx, message.service, message.operation, message.data)
        )
    except exc.RedemptionError as error:
        entry = _error_entry(error)
    except DATABASE_GONE:
        raise
    except Exception:
        logger.exception("unexpected error in S2S %s/%s", message.service, message.operation)
        entry = packets.entry_for_error(exc.InternalError())
    _count(message.service, message.operation, "ok" if entry["status"] == 200 else "error")
    return entry
