"""Bearer credentials: server keys for /server/ paths, user tokens for /client/ paths."""

from dataclasses import dataclass, replace

from django.http import HttpRequest

from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.client_ip import client_ip
from redemption.models import ServerKey
from redemption.services import keys

SERVER, CLIENT, PUBLIC = "server", "client", "public"


@dataclass(frozen=True)
class Identity:
    """Who is calling, and the scope their Idempotency-Keys live in."""

    actor: Actor
    scope: str
    key: ServerKey | None = None
    profile: Profile | None = None
    client_ip: str | None = None
    # A user token minted by a server key: that key's id, until the pipeline (or, for a
    # redeem, the service's rate-limit query) has checked that the key still works.
    minting_key_id: int | None = None


ANONYMOUS = Identity(actor=Actor.system("anonymous"), scope="anonymous")


def bearer(request: HttpRequest) -> str:
    """Return the bearer credential; raise AUTHENTICATION_REQUIRED or INVALID_CREDENTIALS."""
    header = request.META.get("HTTP_AUTHORIZATION", "").strip()
    if not header:
        raise exc.AuthenticationRequiredError()
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise exc.InvalidCredentialsError("Use 'Authorization: Bearer <credential>'.")
    return credential


def authenticate(request: HttpRequest, kind: str) -> Identity:
    """Check the credential the path needs (a server key or a user token)."""
    if kind == PUBLIC:
        return ANONYMOUS
    credential = bearer(request)
    if kind == SERVER:
        key = keys.server_key_authenticate(credential)
        return Identity(actor=Actor.server_key(key), scope=f"server_key:{key.pk}", key=key)
    token = keys.user_token_read(credential)
    profile = token.profile
    return Identity(
        actor=Actor.profile(profile.id, profile.name),
        scope=f"profile:{profile.id}",
        profile=profile,
        client_ip=client_ip(request),
        minting_key_id=token.key_id,
    )


def require_scope(identity: Identity, scope: str | None) -> None:
    """Raise INSUFFICIENT_SCOPE unless the caller's server key holds `scope`."""
    if identity.key is not None and scope is not None:
        keys.server_key_require_scope(identity.key, scope)


def check_minting_key(identity: Identity) -> Identity:
    """Check now that a user token's minting key still works; return the identity, checked."""
    if identity.minting_key_id is None:
        return identity
    keys.minting_key_check(identity.minting_key_id)
    return replace(identity, minting_key_id=None)
