"""Credentials: server keys for /server/, user tokens for /client/, and every way to fail."""

import hashlib
import io
import json
import re
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from redemption.actors import Actor
from redemption.api.endpoints import ENDPOINTS
from redemption.models import AuditEvent, ServerKey
from redemption.services import keys
from tests.api.conftest import ApiClient, mint
from tests.factories import CodeFactory

pytestmark = pytest.mark.django_db

SERVER_PATH = "/api/v1/server/code-types"
CLIENT_PATH = "/api/v1/client/redeemed-codes"


def _expired_token(profile_id: str = "p-42") -> str:
    past = int((timezone.now() - timedelta(seconds=1)).timestamp())
    payload = signing.dumps(
        {"p": profile_id, "n": None, "e": past},
        key=settings.USER_TOKEN_SIGNING_KEY,
        salt=keys.USER_TOKEN_SALT,
    )
    return keys.USER_TOKEN_PREFIX + payload


@pytest.mark.parametrize("path", [SERVER_PATH, CLIENT_PATH])
def test_no_credential_is_authentication_required(api, path):
    response = api.get(path)

    assert (response.status, response.code) == (401, "AUTHENTICATION_REQUIRED")
    assert response.error["reasonCode"] == 40810
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer    ",
        "Token rk_abc",
        "Bearer rk_short",
        "Bearer rk_" + "A" * 43,  # well formed, unknown
        "Bearer ut_not.a.token",
        "Bearer \u00e9\u00e9\u00e9",
    ],
)
@pytest.mark.parametrize("path", [SERVER_PATH, CLIENT_PATH])
def test_malformed_or_unknown_credentials_are_invalid(api, path, header):
    response = api.get(path, headers={"Authorization": header})

    assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")
    assert response.error["reasonCode"] == 40811


def test_a_server_key_works_on_server_paths_and_not_on_client_paths(api, server_secret):
    assert api.as_(server_secret).get(SERVER_PATH).status == 200

    response = api.as_(server_secret).get(CLIENT_PATH)

    assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")


def test_a_user_token_works_on_client_paths_and_not_on_server_paths(api, user_token):
    assert api.as_(user_token).get(CLIENT_PATH).status == 200

    response = api.as_(user_token).get(SERVER_PATH)

    assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")


def test_a_revoked_server_key_stops_working_at_once(api, server_secret):
    assert api.as_(server_secret).get(SERVER_PATH).status == 200
    key = ServerKey.objects.get()
    keys.server_key_revoke(actor=Actor.system("test"), reference=key.prefix)

    response = api.as_(server_secret).get(SERVER_PATH)

    assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")


def test_an_expired_user_token_is_invalid(api):
    response = api.as_(_expired_token()).get(CLIENT_PATH)

    assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")


def test_a_tampered_user_token_is_invalid(api, user_token):
    _, timestamp, signature = user_token.removeprefix("ut_").split(":")
    claims = json.dumps({"p": "p-admin", "n": None, "e": 9_999_999_999}, separators=(",", ":"))
    forged = f"ut_{signing.b64_encode(claims.encode()).decode()}:{timestamp}:{signature}"
    flipped = user_token[:-1] + ("A" if user_token[-1] != "A" else "B")

    for token in [forged, flipped]:
        response = api.as_(token).get(CLIENT_PATH)
        assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")


def test_user_tokens_die_when_the_signing_key_rotates_even_with_fallbacks(api, user_token):
    old = settings.USER_TOKEN_SIGNING_KEY
    with override_settings(USER_TOKEN_SIGNING_KEY="rotated-" + old, SECRET_KEY_FALLBACKS=[old]):
        response = api.as_(user_token).get(CLIENT_PATH)
        assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")
        assert api.as_(mint()).get(CLIENT_PATH).status == 200


def test_a_minted_token_carries_profile_id_and_name(api, server_api):
    code = CodeFactory()
    minted = server_api.post(
        "/api/v1/server/user-tokens", {"profileId": "p-77", "profileName": "Zoë", "ttlSeconds": 60}
    )
    assert minted.status == 201
    body = minted.json()
    assert body["profileId"] == "p-77"
    assert body["token"].startswith("ut_")

    redeemed = api.as_(body["token"]).post("/api/v1/client/redeem", {"scanCode": code.scan_code})

    assert redeemed.json()["redeemedByProfileId"] == "p-77"
    assert redeemed.json()["redeemedByProfileName"] == "Zoë"


def test_server_keys_are_stored_as_a_sha256_hash_with_a_display_prefix(server_secret):
    key = ServerKey.objects.get()

    assert server_secret.startswith("rk_")
    assert len(server_secret) >= 3 + 43  # 32 random bytes, base64url
    assert key.key_hash == hashlib.sha256(server_secret.encode()).hexdigest()
    assert server_secret.startswith(key.prefix)
    assert len(key.prefix) < len(server_secret) // 2
    assert server_secret not in str(list(ServerKey.objects.values()))
    assert server_secret not in str(list(AuditEvent.objects.values()))


def test_last_used_is_written_at_most_once_a_minute(api, server_secret):
    server = api.as_(server_secret)
    with CaptureQueriesContext(connection) as first:
        server.get(SERVER_PATH)
    used = ServerKey.objects.get().last_used_at
    with CaptureQueriesContext(connection) as second:
        server.get(SERVER_PATH)

    def updates(ctx):
        return [q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]

    assert used is not None
    assert len(updates(first)) == 1
    assert updates(second) == []
    ServerKey.objects.update(last_used_at=used - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as third:
        server.get(SERVER_PATH)
    assert len(updates(third)) == 1
    assert ServerKey.objects.get().last_used_at > used


def test_the_api_needs_no_csrf_token(checker, server_secret):
    strict = ApiClient(checker, Client(enforce_csrf_checks=True), server_secret)

    response = strict.post("/api/v1/server/user-tokens", {"profileId": "p-1"})

    assert response.status == 201
    assert not response.raw.cookies


# --- management commands ---------------------------------------------------------------------


def test_create_server_key_prints_the_secret_alone_on_stdout(api):
    out, err = io.StringIO(), io.StringIO()

    call_command("create_server_key", "shop backend", stdout=out, stderr=err)

    secret = out.getvalue().strip()
    assert secret.startswith("rk_") and "\n" not in secret
    assert "shown again" in err.getvalue()
    assert api.as_(secret).get(SERVER_PATH).status == 200
    assert AuditEvent.objects.filter(action="server_key.create").count() == 1


def test_revoke_server_key_by_prefix_or_id(api):
    out = io.StringIO()
    call_command("create_server_key", "one", stdout=out, stderr=io.StringIO())
    first = out.getvalue().strip()
    out = io.StringIO()
    call_command("create_server_key", "two", stdout=out, stderr=io.StringIO())
    second = out.getvalue().strip()
    one, two = ServerKey.objects.get(name="one"), ServerKey.objects.get(name="two")

    call_command("revoke_server_key", one.prefix, stdout=io.StringIO())
    call_command("revoke_server_key", str(two.pk), stdout=io.StringIO())

    assert api.as_(first).get(SERVER_PATH).status == 401
    assert api.as_(second).get(SERVER_PATH).status == 401
    assert AuditEvent.objects.filter(action="server_key.revoke").count() == 2
    again = io.StringIO()
    call_command("revoke_server_key", str(two.pk), stdout=again)
    assert "already revoked" in again.getvalue()


def test_revoke_server_key_refuses_an_unknown_reference():
    with pytest.raises(CommandError, match="no server key matches"):
        call_command("revoke_server_key", "rk_nothing", stdout=io.StringIO())


def test_only_admins_and_the_system_manage_server_keys(ops):
    from redemption import exceptions as exc

    with pytest.raises(exc.PermissionDeniedError):
        keys.server_key_create(actor=ops, name="x")


def test_user_token_ttl_is_bounded_and_defaults_to_an_hour(server_api):
    for ttl in [59, 86_401, "3600", True, 1.5]:
        response = server_api.post(
            "/api/v1/server/user-tokens", {"profileId": "p-1", "ttlSeconds": ttl}
        )
        assert (response.status, response.code) == (400, "INVALID_PARAMETER_VALUE")
        assert list(response.error["details"]["fields"]) == ["ttlSeconds"]
    body = server_api.post("/api/v1/server/user-tokens", {"profileId": "p-1"}).json()
    assert keys.user_token_verify(body["token"]).id == "p-1"
    expires = datetime.fromisoformat(body["expiresAt"])
    assert timedelta(minutes=59) < expires - timezone.now() <= timedelta(hours=1)


# --- every operation --------------------------------------------------------------------------

SAMPLE = {
    "codeType": "xmas-2026",
    "scanCode": "ABCD-EFGH",
    "jobId": "7d0f3a4e-58a5-4d5f-9a3c-0a0b0c0d0e0f",
    "profileId": "p-42",
    "redemptionCodeId": "7d0f3a4e-58a5-4d5f-9a3c-0a0b0c0d0e0f",
}
GUARDED = [(e, op) for e in ENDPOINTS for op in e.operations if op.auth != "public"]


def _url(endpoint) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], endpoint.template)


@pytest.mark.parametrize(("endpoint", "op"), GUARDED, ids=[op.operation_id for _, op in GUARDED])
def test_every_operation_refuses_missing_wrong_kind_revoked_and_expired_credentials(
    api, endpoint, op, server_secret, user_token
):
    url = _url(endpoint)
    revoked_key, revoked_secret = keys.server_key_create(actor=Actor.system("t"), name="gone")
    keys.server_key_revoke(actor=Actor.system("t"), reference=str(revoked_key.pk))
    if op.auth == "server":
        wrong, dead = user_token, revoked_secret
    else:
        wrong, dead = server_secret, _expired_token()

    missing = api.request(op.method, url)
    refused = [api.as_(c).request(op.method, url) for c in [wrong, dead, "garbage"]]

    assert (missing.status, missing.code) == (401, "AUTHENTICATION_REQUIRED")
    assert [(r.status, r.code) for r in refused] == [(401, "INVALID_CREDENTIALS")] * 3


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_every_path_answers_405_to_a_method_it_does_not_offer(api, endpoint):
    offered = {op.method for op in endpoint.operations}
    method = next(m for m in ["DELETE", "PUT", "PATCH", "POST", "GET"] if m not in offered)

    response = api.request(method, _url(endpoint))

    assert (response.status, response.code) == (405, "METHOD_NOT_ALLOWED")
    assert set(response["Allow"].split(", ")) == offered
