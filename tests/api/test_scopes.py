"""Server keys: scopes, expiry, the user tokens they mint, and the signing-key fallbacks."""

import io
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from redemption import rules
from redemption.actors import Actor
from redemption.api.auth import SERVER
from redemption.api.endpoints import ENDPOINTS
from redemption.api.openapi import document
from redemption.db import redeem_at_once
from redemption.models import AuditEvent, ServerKey
from redemption.services import keys
from tests.api.conftest import mint
from tests.factories import CodeFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
CLIENT_REDEEM = "/api/v1/client/redeem"
CLIENT_LIST = "/api/v1/client/redeemed-codes"

# SPEC §13's scope table, copied by hand so that a change on either side fails.
SPEC_SCOPES = {
    ("POST", "/api/v1/server/redeem"): "redeem",
    ("GET", "/api/v1/server/profiles/{profileId}/redeemed-codes"): "redeem",
    ("POST", "/api/v1/server/user-tokens"): "user-tokens",
    ("GET", "/api/v1/server/codes/{scanCode}"): "codes:read",
    ("GET", "/api/v1/server/code-types"): "codes:read",
    ("GET", "/api/v1/server/code-types/{codeType}"): "codes:read",
    ("GET", "/api/v1/server/jobs/{jobId}"): "codes:read",
    ("GET", "/api/v1/server/jobs/{jobId}/result.csv"): "codes:read",
    ("POST", "/api/v1/server/codes"): "codes:write",
    ("POST", "/api/v1/server/codes/{scanCode}/activate"): "codes:write",
    ("POST", "/api/v1/server/codes/{scanCode}/invalidate"): "codes:write",
    ("PUT", "/api/v1/server/codes/{scanCode}/custom-info"): "codes:write",
    ("POST", "/api/v1/server/code-types"): "code-types:write",
    ("PATCH", "/api/v1/server/code-types/{codeType}"): "code-types:write",
    ("DELETE", "/api/v1/server/code-types/{codeType}"): "code-types:write",
    ("POST", "/api/v1/server/code-types/{codeType}/archive"): "code-types:write",
    ("POST", "/api/v1/server/code-types/{codeType}/unarchive"): "code-types:write",
    ("POST", "/api/v1/server/code-types/{codeType}/generate-inline"): "jobs",
    ("POST", "/api/v1/server/code-types/{codeType}/generate"): "jobs",
    ("POST", "/api/v1/server/code-types/{codeType}/import"): "jobs",
    ("POST", "/api/v1/server/redemptions/{redemptionCodeId}/async-response"): "fulfilment",
}
EXAMPLE_PATH = {
    "{profileId}": "p-1",
    "{scanCode}": "ABCD-1234",
    "{codeType}": "no-such-type",
    "{jobId}": "00000000-0000-0000-0000-000000000000",
    "{redemptionCodeId}": "00000000-0000-0000-0000-000000000000",
}
SERVER_OPERATIONS = [
    (op.method, endpoint.template, op)
    for endpoint in ENDPOINTS
    for op in endpoint.operations
    if op.auth == SERVER
]


def _key(*scopes: str, days: int | None = None) -> str:
    _, secret = keys.server_key_create(
        actor=SYSTEM, name="scoped", scopes=list(scopes), expires_in_days=days
    )
    return secret


def _example_path(template: str) -> str:
    for name, value in EXAMPLE_PATH.items():
        template = template.replace(name, value)
    return template


# --- the scope table --------------------------------------------------------------------------


def test_every_server_operation_declares_the_scope_of_the_spec_table():
    declared = {(method, template): op.scope for method, template, op in SERVER_OPERATIONS}

    assert declared == SPEC_SCOPES
    assert set(SPEC_SCOPES.values()) | {"wire-s2s"} == set(rules.SERVER_KEY_SCOPES)


def test_the_openapi_document_names_each_operations_scope():
    paths = document()["paths"]

    for (method, template), scope in SPEC_SCOPES.items():
        operation = paths[template][method.lower()]
        assert operation["x-scope"] == scope
        assert operation["security"] == [{"serverKey": [scope]}]
        assert f"`{scope}`" in operation["description"]
        assert "Error_INSUFFICIENT_SCOPE" in str(operation["responses"]["403"])


@pytest.mark.parametrize(
    ("method", "template", "op"),
    SERVER_OPERATIONS,
    ids=[f"{m} {t}" for m, t, _ in SERVER_OPERATIONS],
)
def test_a_key_without_the_operations_scope_gets_403_insufficient_scope(api, method, template, op):
    others = [s for s in rules.SERVER_KEY_SCOPES if s != op.scope]
    path = _example_path(template)

    response = api.as_(_key(*others)).request(method, path, {})

    assert (response.status, response.code) == (403, "INSUFFICIENT_SCOPE")
    assert response.error["reasonCode"] == 40813
    assert response.error["details"] == {"scope": op.scope}


def test_a_key_with_the_scope_gets_through(api):
    reader = api.as_(_key("codes:read"))

    assert reader.get("/api/v1/server/code-types").status == 200
    refused = reader.post("/api/v1/server/redeem", {"profileId": "p-1", "scanCode": "ABCD-1234"})
    assert refused.code == "INSUFFICIENT_SCOPE"


def test_keys_get_every_scope_by_default():
    key, _ = keys.server_key_create(actor=SYSTEM, name="all")

    assert key.scopes == list(rules.SERVER_KEY_SCOPES)


@pytest.mark.parametrize(
    "scopes", [[], ["redeem", "admin"], "redeem", [1]], ids=["none", "unknown", "string", "int"]
)
def test_a_key_needs_known_scopes(scopes):
    with pytest.raises(keys.exc.InvalidParameterError) as caught:
        keys.server_key_create(actor=SYSTEM, name="bad", scopes=scopes)

    assert "redeem, user-tokens" in caught.value.fields["scopes"]
    assert not ServerKey.objects.exists()


# --- expiry -----------------------------------------------------------------------------------


def test_an_expired_key_is_invalid_credentials(api):
    secret = _key(*rules.SERVER_KEY_SCOPES, days=1)
    assert api.as_(secret).get("/api/v1/server/code-types").status == 200

    ServerKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.as_(secret).get("/api/v1/server/code-types")

    assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")


def test_expiry_is_one_day_or_more_and_is_audited():
    key, _ = keys.server_key_create(actor=SYSTEM, name="short", expires_in_days=30)

    assert key.expires_at - timezone.now() > timedelta(days=29, hours=23)
    event = AuditEvent.objects.get(action="server_key.create")
    assert event.details["scopes"] == list(rules.SERVER_KEY_SCOPES)
    assert event.details["expiresAt"].startswith(key.expires_at.date().isoformat())
    with pytest.raises(keys.exc.InvalidParameterError):
        keys.server_key_create(actor=SYSTEM, name="zero", expires_in_days=0)


# --- user tokens die with their key ------------------------------------------------------------


def _token_from(server_api_client) -> str:
    response = server_api_client.post("/api/v1/server/user-tokens", {"profileId": "p-42"})
    assert response.status == 201
    return response.json()["token"]


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_revoking_or_expiring_a_key_ends_its_user_tokens_at_once(api, how):
    secret = _key("user-tokens")
    token = _token_from(api.as_(secret))
    code = CodeFactory()
    assert api.as_(token).get(CLIENT_LIST).status == 200

    if how == "revoked":
        keys.server_key_revoke(actor=SYSTEM, reference=secret[:11])
    else:
        ServerKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    for response in (
        api.as_(token).get(CLIENT_LIST),
        api.as_(token).post(CLIENT_REDEEM, {"scanCode": code.scan_code}),
        api.as_(token).post(
            CLIENT_REDEEM, {"scanCode": code.scan_code}, headers={"Idempotency-Key": "k-1"}
        ),
        api.as_(token).post(CLIENT_REDEEM, {"scanCode": "bad code!"}),
        api.as_(token).post(CLIENT_REDEEM, {"colour": "red"}),
    ):
        assert (response.status, response.code) == (401, "INVALID_CREDENTIALS")
        assert "revoked or has expired" in response.error["message"]
    code.refresh_from_db()
    assert code.state == "Available"


def test_a_revoked_key_does_not_replay_an_idempotent_answer(api):
    secret = _key("user-tokens")
    token = _token_from(api.as_(secret))
    code = CodeFactory()
    first = api.as_(token).post(
        CLIENT_REDEEM, {"scanCode": code.scan_code}, headers={"Idempotency-Key": "k-1"}
    )
    assert first.status == 200

    keys.server_key_revoke(actor=SYSTEM, reference=secret[:11])
    again = api.as_(token).post(
        CLIENT_REDEEM, {"scanCode": code.scan_code}, headers={"Idempotency-Key": "k-1"}
    )

    assert (again.status, again.code) == (401, "INVALID_CREDENTIALS")


def test_tokens_minted_by_the_system_and_by_live_keys_keep_working(api):
    other = _key("user-tokens")
    token = _token_from(api.as_(other))
    keys.server_key_revoke(actor=SYSTEM, reference=_key("user-tokens")[:11])

    assert api.as_(token).get(CLIENT_LIST).status == 200
    assert api.as_(mint()).get(CLIENT_LIST).status == 200


def test_the_token_names_the_key_that_minted_it(api):
    secret = _key("user-tokens")
    key = ServerKey.objects.get()

    token = _token_from(api.as_(secret))

    assert keys.user_token_read(token).key_id == key.pk
    assert keys.user_token_read(mint()).key_id is None


def _redeem_queries(api, token: str) -> list[str]:
    code = CodeFactory()
    with CaptureQueriesContext(connection) as ctx:
        response = api.as_(token).post(CLIENT_REDEEM, {"scanCode": code.scan_code})
    assert response.status == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_checking_the_minting_key_costs_the_redeem_no_extra_round_trip(api):
    by_system = _redeem_queries(api, mint("p-1"))
    by_key = _redeem_queries(api, _token_from(api.as_(_key("user-tokens"))))

    # With a cache server the failure counts are not in the database: the key is one query,
    # except on PostgreSQL, whose one-statement redeem checks the key itself.
    extra = 1 if settings.CACHE_URL and connection.vendor != "postgresql" else 0
    assert len(by_key) == len(by_system) + extra
    key_table = re.escape(ServerKey._meta.db_table)
    if connection.vendor == "postgresql":
        # The one-statement redeem is a function call whose body checks the key.
        assert all(redeem_at_once.FUNCTION in sql for sql in by_key + by_system)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_get_functiondef('{redeem_at_once.FUNCTION}'::regproc)")
            (body,) = cursor.fetchone()
        assert re.search(key_table, body)
        return
    assert any(re.search(key_table, sql) for sql in by_key)
    assert not any(re.search(key_table, sql) for sql in by_system)


# --- signing key rotation ---------------------------------------------------------------------


def test_tokens_signed_with_a_fallback_signing_key_still_verify(api):
    old = settings.USER_TOKEN_SIGNING_KEY
    token = mint()
    with override_settings(
        USER_TOKEN_SIGNING_KEY="rotated-" + old, USER_TOKEN_SIGNING_KEY_FALLBACKS=[old]
    ):
        assert api.as_(token).get(CLIENT_LIST).status == 200
        fresh = mint()
    with override_settings(USER_TOKEN_SIGNING_KEY="rotated-" + old):
        assert api.as_(token).get(CLIENT_LIST).status == 401
        assert api.as_(fresh).get(CLIENT_LIST).status == 200


# --- the command and the portal ---------------------------------------------------------------


def test_create_server_key_takes_scopes_and_an_expiry(api):
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "create_server_key",
        "reader",
        "--scopes",
        "codes:read, redeem",
        "--expires-in-days",
        "7",
        stdout=out,
        stderr=err,
    )

    key = ServerKey.objects.get()
    assert key.scopes == ["redeem", "codes:read"]
    assert timedelta(days=6, hours=23) < key.expires_at - timezone.now() <= timedelta(days=7)
    assert "scopes redeem, codes:read" in err.getvalue()
    secret = out.getvalue().strip()
    assert api.as_(secret).get("/api/v1/server/code-types").status == 200
    assert api.as_(secret).post("/api/v1/server/codes", {}).code == "INSUFFICIENT_SCOPE"


@pytest.mark.parametrize("scopes", ["codes:read,admin", ","])
def test_create_server_key_lists_the_valid_scopes_when_one_is_unknown(scopes):
    with pytest.raises(CommandError) as caught:
        call_command("create_server_key", "bad", "--scopes", scopes, stdout=io.StringIO())

    assert "Valid scopes: " + ", ".join(rules.SERVER_KEY_SCOPES) in str(caught.value)
    assert not ServerKey.objects.exists()


def test_the_portal_creates_a_scoped_expiring_key_and_lists_both(client, admin_user):
    client.force_login(admin_user)
    url = reverse("redemption:server_keys")

    created = client.post(
        url, {"name": "shop", "scopes": ["redeem", "user-tokens"], "expires_in_days": "90"}
    )

    key = ServerKey.objects.get()
    assert key.scopes == ["redeem", "user-tokens"]
    assert key.expires_at is not None
    page = client.get(url).content.decode()
    assert '<span class="tag">redeem</span> <span class="tag">user-tokens</span>' in page
    assert key.expires_at.strftime("%Y-%m-%d") in page
    assert created.context["secret"].startswith("rk_")


def test_the_portal_refuses_a_key_without_scopes(client, admin_user):
    client.force_login(admin_user)

    response = client.post(reverse("redemption:server_keys"), {"name": "none"})

    assert "scopes" in response.context["form"].errors
    assert not ServerKey.objects.exists()
