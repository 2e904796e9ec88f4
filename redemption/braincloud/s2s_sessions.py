"""S2S sessions: a backend signs in on /s2sdispatcher with a server key (scope `wire-s2s`) as
`serverSecret` and the key's name as `serverName`, for one brainCloud app.

Sessions are database rows shared by every process, keyed by a hash of the session id, tied to
the server key: revoking the key (or its expiry, or disabling the app) ends them at once, with
no cache in between. Each packet slides the expiry by S2S_SESSION_SECONDS.
"""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from redemption import exceptions as exc
from redemption import rules
from redemption.braincloud import packets
from redemption.braincloud.sessions import session_hash
from redemption.models import BraincloudApp, S2SSession, ServerKey
from redemption.services import keys

# brainCloud S2S clients send a heartbeat every HEARTBEAT_SECONDS; a session lives twice that
# after its last packet.
HEARTBEAT_SECONDS = 1800
S2S_SESSION_SECONDS = 2 * HEARTBEAT_SECONDS
SESSION_BYTES = 24


def s2s_session_expired() -> packets.SessionError:
    return packets.SessionError(packets.S2S_SESSION_EXPIRED, "S2S session expired")


@dataclass(frozen=True)
class Signed:
    """Who signed in: the app and the server key (and the session, when one was opened)."""

    app: BraincloudApp
    key: ServerKey
    session_id: str | None = None
    session: S2SSession | None = None


def s2s_credentials_check(*, app_id: object, server_name: object, secret: object) -> Signed:
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


def s2s_session_start(signed: Signed, *, now: datetime) -> Signed:
    """Open a session for a checked sign-in."""
    session_id = secrets.token_urlsafe(SESSION_BYTES)
    session = S2SSession.objects.create(
        key_hash=session_hash(session_id),
        server_key=signed.key,
        app=signed.app,
        created_at=now,
        expires_at=now + timedelta(seconds=S2S_SESSION_SECONDS),
    )
    return Signed(app=signed.app, key=signed.key, session_id=session_id, session=session)


def _live(now: datetime) -> Q:
    return Q(expires_at__gt=now, server_key__revoked_at__isnull=True, app__is_enabled=True) & (
        Q(server_key__expires_at__isnull=True) | Q(server_key__expires_at__gt=now)
    )


def s2s_session_use(*, session_id: str | None, now: datetime) -> Signed:
    """The live session `session_id`, its expiry slid; else 40365 (unknown, expired, or its
    key revoked or expired, or its app disabled)."""
    if not session_id:
        raise s2s_session_expired()
    mine = S2SSession.objects.filter(key_hash=session_hash(session_id))
    slid = mine.filter(_live(now)).update(expires_at=now + timedelta(seconds=S2S_SESSION_SECONDS))
    session = mine.select_related("server_key", "app").first() if slid else None
    if session is None:
        raise s2s_session_expired()
    keys.server_key_require_scope(session.server_key, rules.SCOPE_WIRE_S2S)
    return Signed(app=session.app, key=session.server_key, session=session)


def s2s_session_slot(session: S2SSession) -> QuerySet[S2SSession]:
    """The session's row, as the resend slot helpers take it."""
    return S2SSession.objects.filter(pk=session.pk)


def s2s_sessions_prune(*, now: datetime) -> int:
    """Delete sessions that expired over a day ago, or whose key was revoked; return how many."""
    deleted, _ = S2SSession.objects.filter(
        Q(expires_at__lt=now - timedelta(days=1)) | Q(server_key__revoked_at__isnull=False)
    ).delete()
    return deleted
