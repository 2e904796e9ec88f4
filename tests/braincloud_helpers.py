"""Helpers for the brainCloud wire tests: signed packets as the official client sends them."""

import hashlib
import json
from typing import Any

from django.test import Client

from redemption.actors import Actor
from redemption.models import BraincloudApp
from redemption.services import keys
from redemption.services.braincloud_apps import AppChange, braincloud_app_save

APP_ID = "12345"
SECRET = "s3cret-app-secret"


def make_app(**change: Any) -> BraincloudApp:
    app, _ = braincloud_app_save(
        actor=Actor.system("test"),
        app_id=change.pop("app_id", APP_ID),
        change=AppChange(secret=change.pop("secret", SECRET), **change),
    )
    return app


def sig(body: bytes, secret: str = SECRET) -> str:
    return hashlib.md5(body + secret.encode(), usedforsecurity=False).hexdigest()


def packet(messages: list[dict[str, Any]], *, session_id: str = "", packet_id: int = 0) -> bytes:
    """Serialised as the JS client does: messages, gameId, sessionId, packetId."""
    return json.dumps(
        {"messages": messages, "gameId": APP_ID, "sessionId": session_id, "packetId": packet_id},
        separators=(",", ":"),
    ).encode()


def msg(service: str, operation: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"service": service, "operation": operation}
    if data is not None:
        out["data"] = data
    return out


def post(
    client: Client,
    body: bytes,
    *,
    secret: str = SECRET,
    app_id: str = APP_ID,
    signature: str | None = None,
    **headers: str,
) -> Any:
    """POST a packet as text/plain (as the Node polyfill does); return the HTTP response."""
    return client.post(
        "/dispatcherv2",
        data=body,
        content_type="text/plain;charset=UTF-8",
        headers={"X-SIG": sig(body, secret) if signature is None else signature, "X-APPID": app_id}
        | headers,
    )


def responses(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    return body["responses"]


def anonymous(anonymous_id: str = "anon-1", *, force_create: bool = True) -> dict[str, Any]:
    return msg(
        "authenticationV2",
        "AUTHENTICATE",
        {
            "gameId": APP_ID,
            "externalId": anonymous_id,
            "authenticationToken": "",
            "authenticationType": "Anonymous",
            "forceCreate": force_create,
            "anonymousId": anonymous_id,
            "profileId": "",
            "releasePlatform": "WEB",
        },
    )


def external(profile_id: str, token: str, auth_type: str = "External") -> dict[str, Any]:
    return msg(
        "authenticationV2",
        "AUTHENTICATE",
        {
            "gameId": APP_ID,
            "externalId": profile_id,
            "authenticationToken": token,
            "authenticationType": auth_type,
            "externalAuthName": "backend",
            "forceCreate": True,
            "anonymousId": "x",
            "profileId": "",
        },
    )


def user_token(profile_id: str, name: str | None = None) -> str:
    return keys.user_token_mint(
        actor=Actor.system("test"), profile_id=profile_id, profile_name=name
    ).token


def sign_in(client: Client, profile_id: str = "p-1") -> str:
    """Sign in with an External token; return the session id."""
    [entry] = responses(post(client, packet([external(profile_id, user_token(profile_id))])))
    assert entry["status"] == 200, entry
    return entry["data"]["sessionId"]


def redeem(scan_code: str, code_type: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"scanCode": scan_code}
    if code_type is not None:
        data["codeType"] = code_type
    return msg("redemptionCode", "REDEEM_CODE", data)
