"""The API through outages: Idempotency-Keys of requests that died, the cache server down."""

import json
import logging
import socket
from datetime import timedelta

import pytest
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from redemption import cache_guard
from redemption.api import idempotency
from redemption.models import Code, IdempotencyRecord, RedeemFailure, ServerKey, State
from tests.factories import CodeFactory, CodeTypeFactory

CODES = "/api/v1/server/codes"
CLIENT_REDEEM = "/api/v1/client/redeem"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Idempotency-Keys of requests that died ----------------------------------------------------


def _mark(server_api_key: str, body: dict, *, age: timedelta) -> IdempotencyRecord:
    return IdempotencyRecord.objects.create(
        credential=f"server_key:{ServerKey.objects.get().pk}",
        key=server_api_key,
        request_hash=idempotency.fingerprint("POST", CODES, json.dumps(body).encode()),
        created_at=timezone.now() - age,
    )


@pytest.mark.django_db
def test_the_mark_of_a_request_that_died_is_taken_over_after_30_seconds(server_api):
    ct = CodeTypeFactory()
    body = {"scanCode": "DIED-0001", "codeType": ct.name}
    _mark("died", body, age=timedelta(seconds=31))

    response = server_api.post(CODES, body, headers={"Idempotency-Key": "died"})

    assert response.status == 201
    assert IdempotencyRecord.objects.get(key="died").status_code == 201


@pytest.mark.django_db
def test_a_key_still_in_flight_is_409_with_retry_after(server_api):
    ct = CodeTypeFactory()
    body = {"scanCode": "BUSY-0001", "codeType": ct.name}
    _mark("busy", body, age=timedelta(seconds=20))

    response = server_api.post(CODES, body, headers={"Idempotency-Key": "busy"})

    assert (response.status, response.code) == (409, "IDEMPOTENCY_KEY_IN_USE")
    retry = int(response["Retry-After"])
    assert 9 <= retry <= 11  # the mark may be taken over 30 s after it was made
    assert response.error["details"]["retryAfterSeconds"] == retry
    assert not Code.objects.filter(code_type=ct).exists()


@pytest.mark.django_db
def test_a_request_whose_mark_was_taken_over_does_not_commit_or_store(monkeypatch):
    ct = CodeTypeFactory()
    real_claim = idempotency._claim

    def claim_then_looks_dead(**kwargs):
        mark = real_claim(**kwargs)
        # A retry takes the mark over while this request is still working (it looked dead).
        IdempotencyRecord.objects.filter(pk=mark.pk).update(created_at=timezone.now())
        return mark

    monkeypatch.setattr(idempotency, "_claim", claim_then_looks_dead)

    def work() -> HttpResponse:
        CodeFactory(code_type=ct)
        return HttpResponse(b"{}", status=201, content_type="application/json")

    with pytest.raises(Exception) as caught:
        idempotency.run(credential="c", key="slow", work=work, hash_now="h")

    assert getattr(caught.value, "code", None) == "IDEMPOTENCY_KEY_IN_USE"
    assert not Code.objects.filter(code_type=ct).exists()
    assert IdempotencyRecord.objects.get(key="slow").status_code is None  # the retry's to fill


# --- the cache server down ---------------------------------------------------------------------


@pytest.fixture
def cache_server_down(settings, monkeypatch):
    """CACHE_URL points at a Redis that does not answer (a closed port)."""
    url = f"redis://127.0.0.1:{_closed_port()}/1"
    settings.CACHE_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
    # Try the cache on every request, so the test sees each one fail over.
    monkeypatch.setattr(cache_guard, "RETRY_SECONDS", 0)
    cache_guard.cache_reset()
    yield
    cache_guard.cache_reset()


@pytest.mark.django_db
def test_redeem_keeps_working_on_the_database_store_while_the_cache_is_down(
    user_api, cache_server_down, settings, caplog
):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 3
    code = CodeFactory(state=State.AVAILABLE)

    with caplog.at_level(logging.WARNING, logger="redemption.cache"):
        misses = [user_api.post(CLIENT_REDEEM, {"scanCode": f"MISS-{i:04d}-X"}) for i in range(3)]
        limited = user_api.post(CLIENT_REDEEM, {"scanCode": code.scan_code})
        settings.REDEEM_MAX_FAILED_PER_PROFILE = 10
        redeemed = user_api.post(CLIENT_REDEEM, {"scanCode": code.scan_code})

    assert [r.status for r in misses] == [404, 404, 404]
    assert (limited.status, limited.code) == (429, "REDEMPTION_CODE_MAX_FAILED_EXCEEDED_FOR_USER")
    assert redeemed.status == 200
    assert RedeemFailure.objects.filter(bucket="profile:p-42").count() == 3
    # Logged once for the outage, not once per request.
    unreachable = [r for r in caplog.records if "cache server unreachable" in r.getMessage()]
    assert len(unreachable) == 1


@pytest.mark.django_db
def test_staff_sign_in_works_while_the_cache_is_down(cache_server_down, ops_user):
    response = Client().post(
        "/accounts/login/", {"username": ops_user.username, "password": "pw-olive-ops-123!"}
    )

    assert response.status_code == 302
