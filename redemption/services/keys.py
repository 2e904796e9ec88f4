"""API credentials: server keys (stored as a hash, shown once) and signed user tokens."""

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from redemption import exceptions as exc
from redemption import rules, selectors
from redemption.actors import Actor, Profile
from redemption.db import claims
from redemption.models import ServerKey
from redemption.services._common import audit, require_admin

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


def _check_scopes(scopes: Sequence[str] | None) -> list[str]:
    """The scopes a new key gets: every one when none are named, else exactly those named."""
    if scopes is None:
        return list(rules.SERVER_KEY_SCOPES)
    if isinstance(scopes, str) or not all(isinstance(s, str) for s in scopes):
        raise exc.invalid_fields({"scopes": "must be " + rules.SERVER_KEY_SCOPES_RULE})
    unknown = sorted(set(scopes) - set(rules.SERVER_KEY_SCOPES))
    if unknown or not scopes:
        problem = f"unknown scope {', '.join(unknown)}; " if unknown else ""
        raise exc.invalid_fields({"scopes": f"{problem}must be {rules.SERVER_KEY_SCOPES_RULE}"})
    return [s for s in rules.SERVER_KEY_SCOPES if s in set(scopes)]


def _check_expiry_days(days: int | None) -> int | None:
    if days is not None and not rules.is_whole_number_in(
        days, rules.SERVER_KEY_EXPIRY_DAYS_MIN, rules.SERVER_KEY_EXPIRY_DAYS_MAX
    ):
        rule = rules.whole_number_rule(
            rules.SERVER_KEY_EXPIRY_DAYS_MIN, rules.SERVER_KEY_EXPIRY_DAYS_MAX
        )
        raise exc.invalid_fields({"expiresInDays": f"must be {rule} or empty (never expires)"})
    return days


def _scope_and_expiry_errors(scopes: Sequence[str] | None, days: int | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    try:
        _check_scopes(scopes)
    except exc.InvalidParameterError as error:
        errors.update(error.fields)
    try:
        _check_expiry_days(days)
    except exc.InvalidParameterError as error:
        errors.update(error.fields)
    return errors


def server_key_create(
    *,
    actor: Actor,
    name: str,
    scopes: Sequence[str] | None = None,
    expires_in_days: int | None = None,
) -> tuple[ServerKey, str]:
    """Create a server key; return it with its secret, which is shown this once only.

    Without `scopes` the key holds every scope; without `expires_in_days` it never expires.
    """
    require_admin(actor)
    errors = _scope_and_expiry_errors(scopes, expires_in_days)
    if not rules.is_server_key_name(name):
        errors["name"] = rules.SERVER_KEY_NAME_RULE
    if errors:
        raise exc.invalid_fields(errors)
    granted = _check_scopes(scopes)
    secret = SERVER_KEY_PREFIX + secrets.token_urlsafe(SERVER_KEY_BYTES)
    now = timezone.now()
    expires_at = None if expires_in_days is None else now + timedelta(days=expires_in_days)
    with transaction.atomic():
        key = ServerKey.objects.create(
            name=name.strip(),
            prefix=secret[:DISPLAY_PREFIX_LENGTH],
            key_hash=hash_secret(secret),
            scopes=granted,
            expires_at=expires_at,
            created_at=now,
            created_by=actor.user if actor.kind == "staff" else None,
        )
        audit(
            actor=actor,
            action="server_key.create",
            target_id=str(key.pk),
            details={
                "name": key.name,
                "prefix": key.prefix,
                "scopes": granted,
                "expiresAt": expires_at.isoformat() if expires_at else None,
            },
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
    require_admin(actor)
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
    if key.has_expired(now):
        raise exc.InvalidCredentialsError("The server key has expired.")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        claims.server_key_note_use(key_id=key.pk, now=now, resolution=LAST_USED_RESOLUTION)
        key.last_used_at = now
    return key


def server_key_require_scope(key: ServerKey, scope: str) -> None:
    """Raise INSUFFICIENT_SCOPE unless the key holds `scope`."""
    if scope not in (key.scopes or []):
        raise exc.InsufficientScopeError(
            f"This server key does not hold the '{scope}' scope.", details={"scope": scope}
        )


def minting_key_check(key_id: int) -> None:
    """Raise INVALID_CREDENTIALS unless the server key that minted a user token still works."""
    if not selectors.server_key_alive(key_id, timezone.now()):
        raise exc.minting_key_dead()


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
    """Sign a short-lived credential for one profile.

    A token minted with a server key names that key and dies with it (revoked or expired);
    every token dies when the signing key rotates out of USER_TOKEN_SIGNING_KEY_FALLBACKS.
    """
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
    claims: dict[str, Any] = {
        "p": profile_id,
        "n": profile_name,
        "e": int(expires_at.timestamp()),
    }
    if actor.kind == "server_key":
        claims["k"] = int(actor.id)  # revoking (or the expiry of) this key ends the token
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


@dataclass(frozen=True)
class TokenClaims:
    """What a genuine, unexpired user token says: its profile and the key that minted it."""

    profile: Profile
    key_id: int | None  # None for tokens the system minted (management commands, demo data)


def user_token_read(token: str) -> TokenClaims:
    """Check a token's signature and expiry; the caller still checks its minting key.

    The API defers that check so the redeem can fold it into a query it makes anyway.
    """
    if not isinstance(token, str) or not USER_TOKEN_RE.fullmatch(token):
        raise exc.InvalidCredentialsError()
    fallbacks: list[str | bytes] = list(settings.USER_TOKEN_SIGNING_KEY_FALLBACKS)
    try:
        claims = signing.loads(
            token[len(USER_TOKEN_PREFIX) :],
            key=settings.USER_TOKEN_SIGNING_KEY,
            salt=USER_TOKEN_SALT,
            fallback_keys=fallbacks,
        )
        profile_id, profile_name, expires = claims["p"], claims["n"], claims["e"]
        key_id = claims.get("k")
    except (signing.BadSignature, ValueError, TypeError, KeyError, AttributeError):
        raise exc.InvalidCredentialsError() from None
    if not isinstance(expires, int) or expires <= timezone.now().timestamp():
        raise exc.InvalidCredentialsError("The user token has expired.")
    if key_id is not None and not rules.is_whole_number(key_id):
        raise exc.InvalidCredentialsError()
    return TokenClaims(Profile(profile_id, profile_name), key_id)


def user_token_verify(token: str) -> Profile:
    """Return the profile of a valid token whose minting key (if any) still works."""
    read = user_token_read(token)
    if read.key_id is not None:
        minting_key_check(read.key_id)
    return read.profile
