"""API credentials: server keys (stored as a hash, shown once) and signed user tokens."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from redemption import exceptions as exc
from redemption import permissions, rules
from redemption.actors import Actor, Profile
from redemption.db import claims
from redemption.models import ServerKey
from redemption.services._common import audit

SERVER_KEY_PREFIX = "rk_"
SERVER_KEY_BYTES = 32
SERVER_KEY_RE = re.compile(r"^rk_[A-Za-z0-9_\-]{43}$")
DISPLAY_PREFIX_LENGTH = 11  # "rk_" plus 8 characters: enough to tell keys apart, useless to guess
LAST_USED_RESOLUTION = timedelta(seconds=60)

USER_TOKEN_PREFIX = "ut_"  # noqa: S105 - a marker, not a secret
USER_TOKEN_SALT = "redemption.api.user-token"  # noqa: S105 - a namespace, not a secret
USER_TOKEN_RE = re.compile(r"^ut_[A-Za-z0-9_\-:.]{10,8000}$")  # room for 328 escaped astral chars


def hash_secret(secret: str) -> str:
    """Return the sha256 hex digest under which a server key is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _require_admin(actor: Actor) -> None:
    """Server keys are managed by superusers and by the system (management commands)."""
    if actor.kind == "system":
        return
    if actor.kind == "staff" and permissions.is_admin(actor.user):
        return
    raise exc.PermissionDeniedError()


def server_key_create(*, actor: Actor, name: str) -> tuple[ServerKey, str]:
    """Create a server key; return it with its secret, which is shown this once only."""
    _require_admin(actor)
    if not rules.is_server_key_name(name):
        raise exc.invalid_fields({"name": rules.SERVER_KEY_NAME_RULE})
    secret = SERVER_KEY_PREFIX + secrets.token_urlsafe(SERVER_KEY_BYTES)
    now = timezone.now()
    with transaction.atomic():
        key = ServerKey.objects.create(
            name=name.strip(),
            prefix=secret[:DISPLAY_PREFIX_LENGTH],
            key_hash=hash_secret(secret),
            created_at=now,
            created_by=actor.user if actor.kind == "staff" else None,
        )
        audit(
            actor=actor,
            action="server_key.create",
            target_id=str(key.pk),
            details={"name": key.name, "prefix": key.prefix},
            at=now,
        )
    return key, secret


def server_key_find(reference: str) -> ServerKey:
    """Return the one server key whose id or display prefix is `reference`."""
    reference = (reference or "").strip()
    if reference.isdigit():
        key = ServerKey.objects.filter(pk=int(reference)).first()
        if key is not None:
            return key
    matches = list(ServerKey.objects.filter(prefix__startswith=reference)[:2]) if reference else []
    if len(matches) != 1:
        problem = "no server key matches" if not matches else "matches more than one server key"
        raise exc.invalid_fields({"key": problem})
    return matches[0]


def server_key_revoke(*, actor: Actor, reference: str) -> ServerKey:
    """Revoke the server key with this id or prefix; it stops working at once."""
    _require_admin(actor)
    with transaction.atomic():
        key = server_key_find(reference)
        key = claims.server_key_for_update(key_id=key.pk)
        if key.revoked_at is not None:
            return key
        now = timezone.now()
        key.revoked_at = now
        key.save(update_fields=["revoked_at"])
        audit(
            actor=actor,
            action="server_key.revoke",
            target_id=str(key.pk),
            details={"name": key.name, "prefix": key.prefix},
            at=now,
        )
    return key


def server_key_authenticate(secret: str) -> ServerKey:
    """Return the active server key for `secret` and note its use (at most once a minute)."""
    if not isinstance(secret, str) or not SERVER_KEY_RE.fullmatch(secret):
        raise exc.InvalidCredentialsError()
    key = ServerKey.objects.filter(key_hash=hash_secret(secret)).first()
    if key is None or key.revoked_at is not None:
        raise exc.InvalidCredentialsError()
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        claims.server_key_note_use(key_id=key.pk, now=now, resolution=LAST_USED_RESOLUTION)
        key.last_used_at = now
    return key


@dataclass(frozen=True)
class UserToken:
    """A freshly minted user token and what it carries."""

    token: str
    profile_id: str
    profile_name: str | None
    expires_at: datetime


def _check_profile(profile_id: str, profile_name: str | None) -> None:
    errors: dict[str, str] = {}
    if not rules.is_profile_id(profile_id):
        errors["profileId"] = rules.PROFILE_ID_RULE
    if not rules.is_profile_name(profile_name):
        errors["profileName"] = rules.PROFILE_NAME_RULE
    if errors:
        raise exc.invalid_fields(errors)


def user_token_mint(
    *,
    actor: Actor,
    profile_id: str,
    profile_name: str | None = None,
    ttl_seconds: int = rules.USER_TOKEN_TTL_DEFAULT,
) -> UserToken:
    """Sign a short-lived credential for one profile (it dies when the signing key rotates)."""
    if actor.kind not in {"server_key", "system"}:
        raise exc.PermissionDeniedError()
    _check_profile(profile_id, profile_name)
    if not rules.is_whole_number_in(
        ttl_seconds, rules.USER_TOKEN_TTL_MIN, rules.USER_TOKEN_TTL_MAX
    ):
        rule = rules.whole_number_rule(rules.USER_TOKEN_TTL_MIN, rules.USER_TOKEN_TTL_MAX)
        raise exc.invalid_fields({"ttlSeconds": rule})
    now = timezone.now()
    expires_at = now.replace(microsecond=0) + timedelta(seconds=ttl_seconds)
    claims = {"p": profile_id, "n": profile_name, "e": int(expires_at.timestamp())}
    token = USER_TOKEN_PREFIX + signing.dumps(
        claims, key=settings.USER_TOKEN_SIGNING_KEY, salt=USER_TOKEN_SALT
    )
    with transaction.atomic():
        audit(
            actor=actor,
            action="user_token.mint",
            profile_id=profile_id,
            details={"ttlSeconds": ttl_seconds},
            at=now,
        )
    return UserToken(
        token=token, profile_id=profile_id, profile_name=profile_name, expires_at=expires_at
    )


def user_token_verify(token: str) -> Profile:
    """Return the profile a valid, unexpired token was minted for; raise INVALID_CREDENTIALS."""
    if not isinstance(token, str) or not USER_TOKEN_RE.fullmatch(token):
        raise exc.InvalidCredentialsError()
    try:
        claims = signing.loads(
            token[len(USER_TOKEN_PREFIX) :],
            key=settings.USER_TOKEN_SIGNING_KEY,
            salt=USER_TOKEN_SALT,
            fallback_keys=[],
        )
        profile_id, profile_name, expires = claims["p"], claims["n"], claims["e"]
    except (signing.BadSignature, ValueError, TypeError, KeyError):
        raise exc.InvalidCredentialsError() from None
    if not isinstance(expires, int) or expires <= timezone.now().timestamp():
        raise exc.InvalidCredentialsError("The user token has expired.")
    return Profile(profile_id, profile_name)
