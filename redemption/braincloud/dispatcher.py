"""`POST /dispatcherv2`: the endpoint unchanged official brainCloud clients call (SPEC §11).

Always HTTP 200 with one entry per message, in order: any other status blocks the official
client's queue for good. The one exception is 503 (+ Retry-After) while the database is
unreachable, or while the first copy of a resent packet is still running: the client retries
the same body.
"""

import contextlib
import hashlib
import hmac
import json
import logging
import zlib
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from redemption import exceptions as exc
from redemption import metrics
from redemption.braincloud import client, packets, sessions
from redemption.client_ip import client_ip
from redemption.models import BraincloudApp

logger = logging.getLogger("redemption.braincloud")

ENDPOINT = "client"
DATABASE_GONE = (OperationalError, InterfaceError)
ALLOWED_HEADERS = "Content-Type, X-SIG, X-APPID"


def _cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    origins = settings.BRAINCLOUD_CORS_ORIGINS
    origin = request.headers.get("Origin")
    if "*" in origins:
        response["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in origins:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def _json(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _answer(request: HttpRequest, body: Any, *, status: int = 200) -> HttpResponse:
    payload = body if isinstance(body, str) else _json(body)
    response = HttpResponse(payload.encode(), status=status, content_type="application/json")
    return _cors(request, response)


def _packet_answer(
    request: HttpRequest, packet_id: int | None, entries: list[dict[str, Any]]
) -> HttpResponse:
    return _answer(request, {"packetId": packet_id, "responses": entries})


def _try_again(request: HttpRequest, seconds: int) -> HttpResponse:
    response = _answer(
        request,
        packets.error_entry(
            status=503,
            reason_code=exc.ServiceUnavailableError.reason_code,
            message=exc.ServiceUnavailableError.default_message,
        ),
        status=503,
    )
    response["Retry-After"] = str(seconds)
    return response


def _gzipped(request: HttpRequest) -> bool:
    return request.headers.get("Content-Encoding", "").strip().lower() == "gzip"


def _gunzip(raw: bytes) -> tuple[bytes | None, bool]:
    """A gzipped body (newer brainCloud clients compress large packets; X-SIG is taken over
    the plain JSON), unpacked no further than one byte past the packet limit."""
    unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
    plain = unpack.decompress(raw, packets.MAX_PACKET_BYTES + 1)
    if len(plain) > packets.MAX_PACKET_BYTES:
        return None, True
    if not unpack.eof:
        raise zlib.error("truncated gzip stream")
    return plain, False


def _app_for(request: HttpRequest, raw: bytes) -> BraincloudApp:
    """The enabled app X-APPID names whose secret signs this body; else WIRE_BAD_SIGNATURE."""
    app_id = request.headers.get("X-APPID", "")
    signature = request.headers.get("X-SIG", "").strip().lower()
    app = BraincloudApp.objects.filter(app_id=app_id[:64], is_enabled=True).first()
    if app is None or not signature:
        raise exc.WireBadSignatureError()
    expected = hashlib.md5(raw + app.secret.encode(), usedforsecurity=False).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode(errors="replace")):
        raise exc.WireBadSignatureError()
    return app


def _label(message: packets.Message) -> tuple[str, str]:
    key = (message.service, message.operation)
    return key if key in client.OPERATIONS else ("other", "other")


def _count(messages: tuple[packets.Message, ...] | int, outcome: str) -> None:
    if isinstance(messages, int):
        for _ in range(messages):
            metrics.wire_message(
                endpoint=ENDPOINT, service="other", operation="other", outcome=outcome
            )
        return
    for message in messages:
        service, operation = _label(message)
        metrics.wire_message(
            endpoint=ENDPOINT, service=service, operation=operation, outcome=outcome
        )


@csrf_exempt
def dispatcherv2(request: HttpRequest) -> HttpResponse:
    """Answer one brainCloud client packet."""
    if request.method == "OPTIONS":
        response = _cors(request, HttpResponse(status=204))
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = "86400"
        return response
    if request.method != "POST":
        response = _answer(
            request,
            packets.entry_for_error(exc.MethodNotAllowedError()),
            status=405,
        )
        response["Allow"] = "POST, OPTIONS"
        return response
    raw, too_large = packets.read_body(request)
    if raw is not None and not too_large and _gzipped(request):
        try:
            raw, too_large = _gunzip(raw)
        except zlib.error:
            _count(1, "refused")
            error = exc.invalid_fields({"body": "is not valid gzip"})
            return _packet_answer(request, None, [packets.entry_for_error(error)])
    if too_large:
        entries = packets.too_large_entries(raw)
        _count(len(entries), "refused")
        return _packet_answer(request, None, entries)
    assert raw is not None
    try:
        return _dispatch(request, raw)
    except DATABASE_GONE as error:
        logger.warning("database unavailable: %s on /dispatcherv2", type(error).__name__)
        return _try_again(request, settings.OUTAGE_RETRY_AFTER_SECONDS)


def _dispatch(request: HttpRequest, raw: bytes) -> HttpResponse:
    try:
        app = _app_for(request, raw)
        packet = packets.parse(raw)
    except exc.RedemptionError as error:
        count = packets.count_messages(raw)
        _count(count, "refused")
        return _packet_answer(request, None, [packets.entry_for_error(error)] * count)
    now = timezone.now()
    ctx = client.Context(app=app, client_ip=client_ip(request))
    if packet.session_id is not None or not _signs_in(packet):
        try:
            ctx.session = sessions.session_use(app=app, session_id=packet.session_id, now=now)
        except packets.SessionError as error:
            ctx.session_error = error
    slot = None if ctx.session is None else sessions.session_slot(ctx.session)
    if slot is not None:
        claim = packets.packet_claim(slot, packet.packet_id, now=now)
        if claim.action == packets.REPLAY and claim.response is not None:
            _count(packet.messages, "replayed")
            return _answer(request, claim.response)
        if claim.action == packets.BUSY:
            return _try_again(request, 1)
    try:
        entries = [_run(ctx, message) for message in packet.messages]
    except DATABASE_GONE:
        if slot is not None:
            # Else the claim goes stale and is taken over after RESEND_TAKEOVER_SECONDS.
            with contextlib.suppress(*DATABASE_GONE):
                packets.packet_forget(slot, packet.packet_id)
        raise
    body = _json({"packetId": packet.packet_id, "responses": entries})
    if slot is not None:
        packets.packet_remember(slot, packet.packet_id, body)
    return _answer(request, body)


def _signs_in(packet: packets.Packet) -> bool:
    return any((m.service, m.operation) == client.AUTHENTICATE for m in packet.messages)


def _run(ctx: client.Context, message: packets.Message) -> dict[str, Any]:
    service, operation = _label(message)
    try:
        if message.problem:
            raise exc.invalid_fields({"message": message.problem})
        handler = client.OPERATIONS.get((message.service, message.operation))
        if handler is None:
            raise exc.WireUnknownOperationError(
                f"{message.service[:64]}/{message.operation[:64]} is not offered here."
            )
        entry = packets.ok(handler(ctx, message.data))
    except (exc.RedemptionError, packets.SessionError) as error:
        entry = packets.entry_for_error(error)
    except DATABASE_GONE:
        raise
    except Exception:
        logger.exception("unexpected error in %s/%s", service, operation)
        entry = packets.entry_for_error(exc.InternalError())
    outcome = "ok" if entry["status"] == 200 else "error"
    metrics.wire_message(endpoint=ENDPOINT, service=service, operation=operation, outcome=outcome)
    return entry
