"""What a brainCloud client may ask for: sign-in, heartbeat, logout, redeem and the list of
redeemed codes. Each operation takes one message and answers its entry's `data`, or raises
the error that becomes its entry."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from redemption import exceptions as exc
from redemption import metrics, rules, selectors, services
from redemption.actors import Actor, Profile
from redemption.api.endpoints.shared import REDEEM_FIELDS
from redemption.api.validation import Field, clean_object
from redemption.braincloud import packets, sessions
from redemption.braincloud.records import wire_record_of, wire_records
from redemption.models import BraincloudApp, WireSession
from redemption.services import keys

AUTHENTICATE = ("authenticationV2", "AUTHENTICATE")
HEARTBEAT = ("heartbeat", "READ")
LOGOUT = ("playerState", "LOGOUT")
REDEEM = ("redemptionCode", "REDEEM_CODE")
REDEEMED_CODES = ("redemptionCode", "GET_REDEEMED_CODES")

REDEEMED_CODES_MAX = 1000
EXTERNAL, ANONYMOUS = "External", "Anonymous"

_EXTERNAL_FIELDS = (
    Field(
        "externalId", "string", required=True, min=rules.PROFILE_ID_MIN, max=rules.PROFILE_ID_MAX
    ),
    Field("authenticationToken", "string", required=True, max=8100),
)
_ANONYMOUS_FIELDS = (
    Field(
        "anonymousId", "string", required=True, min=rules.PROFILE_ID_MIN, max=rules.PROFILE_ID_MAX
    ),
    Field("forceCreate", "boolean", nullable=True),
)
_REDEEMED_CODES_FIELDS = tuple(f for f in REDEEM_FIELDS if f.name == "codeType")


@dataclass
class Context:
    """One packet's caller: the app, the client's address, and the session once known."""

    app: BraincloudApp
    client_ip: str
    session: WireSession | None = None
    session_error: packets.SessionError | None = None


def _known(fields: tuple[Field, ...], data: dict[str, Any]) -> dict[str, Any]:
    """The fields we read (brainCloud clients send more, which brainCloud ignores too)."""
    names = {f.name for f in fields}
    return clean_object(fields, {k: v for k, v in data.items() if k in names})


def authenticate(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Sign in with an External user token or, when the app allows it, an anonymous id."""
    kind = data.get("authenticationType")
    now = timezone.now()
    new_user = False
    minting_key_id: int | None = None
    if kind == EXTERNAL:
        given = _known(_EXTERNAL_FIELDS, data)
        try:
            claims = keys.user_token_read(given["authenticationToken"])
            if claims.key_id is not None:
                keys.minting_key_check(claims.key_id)
        except exc.InvalidCredentialsError as error:
            raise exc.WireBadCredentialsError(error.message) from None
        if claims.profile.id != given["externalId"]:
            raise exc.WireBadCredentialsError("The token was minted for another profile.")
        profile_id, profile_name = claims.profile.id, claims.profile.name
        minting_key_id = claims.key_id
    elif kind == ANONYMOUS and ctx.app.allow_anonymous:
        given = _known(_ANONYMOUS_FIELDS, data)
        if not sessions.anonymous_sign_in_take(client_ip=ctx.client_ip, now=now):
            metrics.rate_limited(limit="wire_anonymous")
            raise exc.MaxFailedExceededError(
                "Too many anonymous sign-ins from this address; try again in a minute.",
                details={"retryAfterSeconds": 60},
            )
        found = sessions.anonymous_profile(
            app=ctx.app,
            anonymous_id=given["anonymousId"],
            create=bool(given.get("forceCreate")),
            now=now,
        )
        if found is None:
            raise exc.WireBadCredentialsError("No profile has this anonymous id.")
        (profile_id, new_user), profile_name = found, None
    else:
        raise exc.WireAuthTypeNotAllowedError(
            f"Allowed authentication types: {', '.join(ctx.app.auth_types)}."
        )
    started = sessions.session_start(
        app=ctx.app,
        profile_id=profile_id,
        profile_name=profile_name,
        client_ip=ctx.client_ip,
        minting_key_id=minting_key_id,
        now=now,
    )
    ctx.session, ctx.session_error = started.session, None
    return {
        "sessionId": started.session_id,
        "profileId": profile_id,
        "playerName": profile_name or "",
        "playerSessionExpiry": ctx.app.session_seconds,
        "newUser": "true" if new_user else "false",
        "server_time": int(now.timestamp() * 1000),
    }


def _session(ctx: Context) -> WireSession:
    if ctx.session is None:
        raise ctx.session_error or packets.no_session()
    return ctx.session


def heartbeat(ctx: Context, data: dict[str, Any]) -> None:
    _session(ctx)
    return None


def logout(ctx: Context, data: dict[str, Any]) -> None:
    sessions.session_end(_session(ctx), now=timezone.now())
    return None


def redeem(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """REDEEM_CODE: the record in brainCloud's shape."""
    session = _session(ctx)
    given = _known(REDEEM_FIELDS, data)
    result = services.redeem(
        actor=Actor.profile(session.profile_id, session.profile_name),
        profile=Profile(session.profile_id, session.profile_name),
        scan_code=given["scanCode"],
        code_type_name=given.get("codeType"),
        custom_redemption_info=given.get("customRedemptionInfo"),
        client_ip=ctx.client_ip,
        minting_key_id=session.minting_key_id,
    )
    return wire_record_of(result.record, app_id=ctx.app.app_id)


def redeemed_codes(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """GET_REDEEMED_CODES: the newest 1,000 Redeemed records (brainCloud has no paging)."""
    session = _session(ctx)
    given = _known(_REDEEMED_CODES_FIELDS, data)
    name = given.get("codeType")
    page = selectors.profile_records_page(
        session.profile_id,
        code_type_id=None if name is None else selectors.code_type_get(name).pk,
        redeemed_only=True,
        limit=REDEEMED_CODES_MAX,
    )
    return {"codes": wire_records(page.records, app_id=ctx.app.app_id)}


OPERATIONS: dict[tuple[str, str], Callable[[Context, dict[str, Any]], Any]] = {
    AUTHENTICATE: authenticate,
    HEARTBEAT: heartbeat,
    LOGOUT: logout,
    REDEEM: redeem,
    REDEEMED_CODES: redeemed_codes,
}
