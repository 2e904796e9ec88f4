"""S2S sessions: a backend signs in on /s2sdispatcher with a server key (scope `wire-s2s`) as
`serverSecret` and the key's name as `serverName`, for one brainCloud app.

Sessions are database rows shared by every process, keyed by a hash of the session id, tied to
the server key: revoking the key (or its expiry, or disabling the app) ends them at once, with
no cache in between. Each packet slides the expiry by S2S_SESSION_SECONDS.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from redemption import rules
from redemption.braincloud import packets
from redemption.braincloud.sessions import session_hash
from redemption.models import BraincloudApp, S2SSession, ServerKey

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
    key revoked, expired or without `wire-s2s`, or its app disabled)."""
    if not session_id:
        raise s2s_session_expired()
    mine = S2SSession.objects.filter(key_hash=session_hash(session_id))
    slid = mine.filter(_live(now)).update(expires_at=now + timedelta(seconds=S2S_SESSION_SECONDS))
    session = mine.select_related("server_key", "app").first() if slid else None
    if session is None or rules.SCOPE_WIRE_S2S not in (session.server_key.scopes or []):
        raise s2s_session_expired()
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
