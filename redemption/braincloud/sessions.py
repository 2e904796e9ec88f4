"""Client sessions of brainCloud apps, in the database so every process shares them.

A session id is shown to the client once and kept only as a hash. Each packet that uses a
session slides its expiry by the app's session lifetime, with one conditional UPDATE.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from redemption.braincloud import packets
from redemption.db import sign_in
from redemption.models import BraincloudApp, ServerKey, WireAnonymousProfile, WireSession

SESSION_BYTES = 24
ANONYMOUS_PREFIX = "anon-"
ANONYMOUS_WINDOW = timedelta(minutes=1)
ANONYMOUS_COUNTER = "wire-anon:"


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Started:
    """A new session: the id the client gets, and the row."""

    session_id: str
    session: WireSession


def session_start(
    *,
    app: BraincloudApp,
    profile_id: str,
    profile_name: str | None,
    client_ip: str,
    minting_key_id: int | None,
    now: datetime,
) -> Started:
    """Open a session for `profile_id` on `app`."""
    session_id = secrets.token_urlsafe(SESSION_BYTES)
    session = WireSession.objects.create(
        key_hash=session_hash(session_id),
        app=app,
        profile_id=profile_id,
        profile_name=profile_name,
        client_ip=client_ip[:100],
        minting_key_id=minting_key_id,
        created_at=now,
        expires_at=now + timedelta(seconds=app.session_seconds),
    )
    return Started(session_id, session)


def session_use(*, app: BraincloudApp, session_id: str | None, now: datetime) -> WireSession:
    """The live session `session_id` of `app`, its expiry slid; else raise a SessionError
    (40304 none or unknown, 40356 logged out, 40303 expired, or its External token's server
    key was revoked or has expired since: the client signs in again). One UPDATE decides."""
    if not session_id:
        raise packets.no_session()
    mine = WireSession.objects.filter(key_hash=session_hash(session_id), app=app)
    key_alive = Q(minting_key_id__isnull=True) | Q(
        minting_key_id__in=ServerKey.objects.filter(revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values("pk")
    )
    if mine.filter(key_alive, expires_at__gt=now, logged_out=False).update(
        expires_at=now + timedelta(seconds=app.session_seconds)
    ):
        session = mine.first()
        if session is not None:
            return session
    found = mine.values("logged_out").first()
    if found is None:
        raise packets.no_session()
    if found["logged_out"]:
        raise packets.session_logged_out()
    raise packets.session_expired()


def session_slot(session: WireSession) -> QuerySet[WireSession]:
    """The session's row, as the resend slot helpers take it."""
    return WireSession.objects.filter(pk=session.pk)


def session_end(session: WireSession, *, now: datetime) -> None:
    """Log the session out: later packets with its id get 40356."""
    session_slot(session).update(logged_out=True, expires_at=now)


def sessions_prune(*, now: datetime) -> int:
    """Delete sessions that expired (or were logged out) over a day ago; return how many."""
    deleted, _ = WireSession.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    return deleted


def anonymous_profile(
    *, app: BraincloudApp, anonymous_id: str, create: bool, now: datetime
) -> tuple[str, bool] | None:
    """The profile id `anonymous_id` signs in as on `app`, and whether it was just created;
    None when it has none and `create` is false."""
    found = WireAnonymousProfile.objects.filter(app=app, anonymous_id=anonymous_id).first()
    if found is not None:
        return found.profile_id, False
    if not create:
        return None
    profile_id = ANONYMOUS_PREFIX + secrets.token_hex(16)
    try:
        with transaction.atomic():
            WireAnonymousProfile.objects.create(
                app=app, anonymous_id=anonymous_id, profile_id=profile_id, created_at=now
            )
    except IntegrityError:  # the same anonymous id signed in twice at once: one row won
        winner = WireAnonymousProfile.objects.get(app=app, anonymous_id=anonymous_id)
        return winner.profile_id, False
    return profile_id, True


def anonymous_sign_in_take(*, client_ip: str, now: datetime) -> bool:
    """Count one anonymous sign-in from `client_ip`; False past WIRE_ANON_PER_IP_PER_MINUTE."""
    limit = sign_in.Limit(ANONYMOUS_COUNTER + client_ip, settings.WIRE_ANON_PER_IP_PER_MINUTE)
    return sign_in.tries_take([limit], now=now, since=now - ANONYMOUS_WINDOW)
