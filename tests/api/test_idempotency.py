"""Idempotency-Key: replay, reuse, scope, in-flight, concurrency, what is not stored, pruning."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from redemption.api import idempotency
from redemption.models import AuditEvent, Code, IdempotencyRecord, ServerKey, State
from redemption.services.housekeeping import idempotency_records_prune
from tests.api.conftest import ApiClient, mint
from tests.factories import CodeFactory, CodeTypeFactory

pytestmark = pytest.mark.django_db

CODES = "/api/v1/server/codes"
REDEEM = "/api/v1/client/redeem"


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def test_a_retry_replays_the_first_answer_without_doing_the_work_again(server_api):
    ct = CodeTypeFactory()
    body = {"scanCode": "ONCE-0001", "codeType": ct.name}

    first = server_api.post(CODES, body, headers=_key("k-1"))
    again = server_api.post(CODES, body, headers=_key("k-1"))

    assert (first.status, again.status) == (201, 201)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Code.objects.filter(code_type=ct).count() == 1
    assert AuditEvent.objects.filter(action="code.add").count() == 1


def test_the_same_key_on_a_different_request_is_reused(server_api):
    ct = CodeTypeFactory()
    server_api.post(CODES, {"scanCode": "ONCE-0002", "codeType": ct.name}, headers=_key("k-2"))

    other_body = server_api.post(
        CODES, {"scanCode": "ONCE-0003", "codeType": ct.name}, headers=_key("k-2")
    )
    other_path = server_api.post(
        "/api/v1/server/user-tokens", {"profileId": "p"}, headers=_key("k-2")
    )

    for response in [other_body, other_path]:
        assert (response.status, response.code) == (422, "IDEMPOTENCY_KEY_REUSED")
        assert response.error["reasonCode"] == 40821
    assert not Code.objects.filter(canonical="0NCE0003").exists()


def test_keys_are_scoped_to_the_credential(api):
    first, second = CodeFactory(), CodeFactory()

    one = api.as_(mint("p-1")).post(REDEEM, {"scanCode": first.scan_code}, headers=_key("same"))
    two = api.as_(mint("p-2")).post(REDEEM, {"scanCode": second.scan_code}, headers=_key("same"))

    assert (one.status, two.status) == (200, 200)
    assert not two.has_header("Idempotent-Replayed")
    assert IdempotencyRecord.objects.filter(key="same").count() == 2


def test_a_stored_error_is_replayed_even_after_the_world_changed(user_api, server_api):
    ct = CodeTypeFactory()
    body = {"scanCode": "LATE-0001"}
    missing = user_api.post(REDEEM, body, headers=_key("r-1"))
    server_api.post(CODES, {**body, "codeType": ct.name, "codeState": "Available"})

    again = user_api.post(REDEEM, body, headers=_key("r-1"))

    assert (missing.status, again.status) == (404, 404)
    assert again["Idempotent-Replayed"] == "true"
    assert Code.objects.get(canonical="1ATE0001").state == State.AVAILABLE


def test_validation_failures_and_rate_limits_are_not_remembered(user_api, settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 1
    invalid = user_api.post(REDEEM, {"scanCode": 1}, headers=_key("v-1"))
    assert invalid.status == 400
    assert not IdempotencyRecord.objects.filter(key="v-1").exists()

    user_api.post(REDEEM, {"scanCode": "NOPE-0001"})
    limited = user_api.post(REDEEM, {"scanCode": "NOPE-0002"}, headers=_key("v-2"))

    assert limited.status == 429
    assert not IdempotencyRecord.objects.filter(key="v-2").exists()


def test_a_job_answer_is_replayed_with_its_location(server_api):
    ct = CodeTypeFactory()
    url = f"/api/v1/server/code-types/{ct.name}/generate"
    first = server_api.post(url, {"quantity": 3}, headers=_key("g-1"))
    again = server_api.post(url, {"quantity": 3}, headers=_key("g-1"))

    assert (first.status, again.status) == (202, 202)
    assert again["Location"] == first["Location"]


def test_generated_codes_are_replayed_not_generated_twice(server_api):
    ct = CodeTypeFactory()
    url = f"/api/v1/server/code-types/{ct.name}/generate-inline"

    first = server_api.post(url, {"quantity": 20}, headers=_key("gi-1"))
    again = server_api.post(url, {"quantity": 20}, headers=_key("gi-1"))

    assert (first.status, again.status) == (201, 201)
    assert again.json() == first.json()
    assert Code.objects.filter(code_type=ct).count() == 20


def test_an_abandoned_in_flight_mark_is_taken_over(server_api):
    ct = CodeTypeFactory()
    body = {"scanCode": "LOST-0001", "codeType": ct.name}
    fingerprint = idempotency.fingerprint("POST", CODES, json.dumps(body).encode())
    IdempotencyRecord.objects.create(
        credential=f"server_key:{ServerKey.objects.get().pk}",
        key="lost",
        request_hash=fingerprint,
        created_at=timezone.now() - timedelta(minutes=11),
    )

    response = server_api.post(CODES, body, headers=_key("lost"))

    assert response.status == 201
    assert IdempotencyRecord.objects.get(key="lost").status_code == 201


def test_prune_keeps_a_day_of_records(db):
    now = timezone.now()
    old = IdempotencyRecord.objects.create(
        credential="c", key="old", request_hash="h", created_at=now - timedelta(hours=25)
    )
    kept = IdempotencyRecord.objects.create(
        credential="c", key="new", request_hash="h", created_at=now - timedelta(hours=23)
    )

    assert idempotency_records_prune() == 1
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()


# --- real threads against a real database --------------------------------------------------


def _in_thread(target, results: list, index: int) -> threading.Thread:
    def run() -> None:
        try:
            results[index] = target()
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_have_one_effect(checker, server_secret):
    ct = CodeTypeFactory()
    body = {"scanCode": "RACE-0001", "codeType": ct.name}
    start = threading.Barrier(8)
    results: list = [None] * 8

    def attempt():
        client = ApiClient(checker, Client(), server_secret)
        start.wait()
        return client.post(CODES, body, headers=_key("race"))

    threads = [_in_thread(attempt, results, i) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Code.objects.filter(code_type=ct).count() == 1
    assert AuditEvent.objects.filter(action="code.add").count() == 1
    fresh = [r for r in results if r.status == 201 and not r.has_header("Idempotent-Replayed")]
    assert len(fresh) == 1
    for r in results:
        assert (r.status, r.code if r.status != 201 else None) in {
            (201, None),
            (409, "IDEMPOTENCY_KEY_IN_USE"),
        }


@pytest.mark.django_db(transaction=True)
def test_concurrent_redeems_with_one_key_redeem_once(checker):
    code = CodeFactory()
    token = mint()
    start = threading.Barrier(6)
    results: list = [None] * 6

    def attempt():
        client = ApiClient(checker, Client(), token)
        start.wait()
        return client.post(REDEEM, {"scanCode": code.scan_code}, headers=_key("tap"))

    threads = [_in_thread(attempt, results, i) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert AuditEvent.objects.filter(action="code.redeem").count() == 1
    assert sorted({r.status for r in results}) in ([200], [200, 409])
    assert all(r.code in {None, "IDEMPOTENCY_KEY_IN_USE"} for r in results if r.status == 409)


@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_is_running_is_in_use(checker, webhook):
    entered, release = threading.Event(), threading.Event()

    def slow(request):
        entered.set()
        release.wait(10)
        return 200, {"success": True, "complete": True}

    webhook.behaviour = slow
    ct = CodeTypeFactory(fulfillment_url=webhook.url, webhook_secret="whsec_test")
    code = CodeFactory(code_type=ct)
    token = mint()
    results: list = [None]
    first = _in_thread(
        lambda: ApiClient(checker, Client(), token).post(
            REDEEM, {"scanCode": code.scan_code}, headers=_key("slow")
        ),
        results,
        0,
    )
    first.start()
    assert entered.wait(10)

    during = ApiClient(checker, Client(), token).post(
        REDEEM, {"scanCode": code.scan_code}, headers=_key("slow")
    )
    release.set()
    first.join()
    after = ApiClient(checker, Client(), token).post(
        REDEEM, {"scanCode": code.scan_code}, headers=_key("slow")
    )

    assert (during.status, during.code) == (409, "IDEMPOTENCY_KEY_IN_USE")
    assert during.error["reasonCode"] == 40820
    assert results[0].status == 200
    assert (after.status, after["Idempotent-Replayed"]) == (200, "true")
    assert after.content == results[0].content
    assert webhook.calls == 1
