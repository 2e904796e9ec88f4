"""Redeem with fulfilment webhooks (SPEC §6): real HTTP servers, real threads, real database."""

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from redemption import exceptions as exc
from redemption import fulfillment
from redemption.actors import Actor, Profile
from redemption.models import Attempt, AuditEvent, Code, CodeType, SharedRedemption, State
from redemption.services import (
    code_reset,
    code_type_create,
    code_type_rotate_secret,
    process_async_response,
    redeem,
    shared_redemption_delete,
    sweep_timeouts,
)
from redemption.services.code_types import new_webhook_secret
from redemption.services.timeouts import ABANDONED_MSG
from tests.factories import CodeFactory
from tests.webhook import WebhookServer, closed_port_url, receiver_process

TX = pytest.mark.django_db(transaction=True)
SYSTEM = Actor.system("test")
ANN = Profile("p-ann", "Ann")
BOB = Profile("p-bob", "Bob")
DONE = {"success": True, "complete": True}
ACCEPTED = {"success": True, "complete": False}
SPEC_PAYLOAD_KEYS = {
    "operation",
    "scanCode",
    "redemptionCodeId",
    "attempt",
    "codeType",
    "codeUseType",
    "async",
    "customCodeInfo",
    "customRedemptionInfo",
    "profileId",
    "profileName",
}


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()


_names = iter(range(10**6))


def make_type(
    url: str,
    *,
    shared: bool = False,
    is_async: bool = False,
    max_retries: int = 0,
    timeout: int = 10,
    max_redemptions: int | None = None,
) -> CodeType:
    n = next(_names)
    return code_type_create(
        actor=SYSTEM,
        name=f"ful-{n}",
        use_type="MULTI" if shared else "SINGLE",
        scan_code=f"SHARED-FUL-{n:04d}" if shared else None,
        max_redemptions=max_redemptions,
        custom_code_info={"reward": "sword"},
        fulfillment={
            "url": url,
            "async": is_async,
            "maxRetries": max_retries,
            "timeoutSeconds": timeout,
        },
    )


def add_code(ct: CodeType) -> Code:
    return CodeFactory(code_type=ct, state=State.AVAILABLE, custom_code_info={"gold": 100})


def scan_of(ct: CodeType, code: Code | None) -> str:
    return code.scan_code if code is not None else ct.scan_code


def outcome(call: Callable[[], Any]) -> str:
    """The record's state after `call`, or the code of the domain error it raised."""
    try:
        result = call()
    except exc.RedemptionError as err:
        return err.code
    record = getattr(result, "record", result)
    return record.state


def attempts_of(record: Code | SharedRedemption) -> list[Attempt]:
    field = "shared" if isinstance(record, SharedRedemption) else "code"
    return list(Attempt.objects.filter(**{field: record}).order_by("attempt"))


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run fn in a thread with its own DB connection (closed at the end); collect its outcome."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["outcome"] = outcome(fn)
        except BaseException as err:  # surfaced by the test's assertions
            out["crash"] = err
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def wait_for(predicate: Callable[[], bool], seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def move_deadline_to_past(record: Code | SharedRedemption) -> None:
    """Given the attempt window has passed (without sleeping through it)."""
    field = "shared" if isinstance(record, SharedRedemption) else "code"
    Attempt.objects.filter(**{field: record}, state=State.IN_PROGRESS).update(
        deadline_at=timezone.now() - timedelta(seconds=1)
    )


# --- signing ----------------------------------------------------------------------------------


def test_signature_verifies_only_the_same_secret_body_and_recent_time():
    secret, body = new_webhook_secret(), b'{"a":1}'
    header = fulfillment.sign(secret, body)

    assert fulfillment.verify(secret, body, header)
    assert not fulfillment.verify(new_webhook_secret(), body, header)
    assert not fulfillment.verify(secret, b'{"a":2}', header)
    stale = fulfillment.sign(secret, body, int(time.time()) - 301)
    assert not fulfillment.verify(secret, body, stale)
    assert not fulfillment.verify(secret, body, "v1=abc")
    assert not fulfillment.verify(secret, body, "garbage")


# --- synchronous webhooks ---------------------------------------------------------------------


@TX
def test_sync_success_redeems_and_keeps_the_webhooks_info(webhook):
    webhook.behaviour = lambda _r: (200, {**DONE, "customRedemptionInfo": {"item": "sword-1"}})
    code = add_code(make_type(webhook.url))

    result = redeem(
        actor=SYSTEM, profile=ANN, scan_code=code.scan_code, custom_redemption_info={"note": "x"}
    )

    assert not result.in_progress
    code.refresh_from_db()
    assert code.state == State.REDEEMED
    assert code.current_attempt == 1
    assert code.redeemed_by_profile_id == ANN.id
    assert code.redeemed_at is not None
    assert code.custom_redemption_info == {"item": "sword-1"}
    [attempt] = attempts_of(code)
    assert attempt.state == State.REDEEMED
    assert attempt.finished_at is not None
    assert attempt.error_code is None
    assert attempt.response == {**DONE, "customRedemptionInfo": {"item": "sword-1"}}
    assert webhook.calls == 1
    assert webhook.seen[0].json["customRedemptionInfo"] == {"note": "x"}


@TX
def test_sync_success_false_fails_with_redemption_failed(webhook):
    webhook.behaviour = lambda _r: (
        200,
        {"success": False, "errorCode": "OUT_OF_STOCK", "errorMsg": "none left"},
    )
    code = add_code(make_type(webhook.url))

    with pytest.raises(exc.RedemptionFailedError) as caught:
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert caught.value.details["errorCode"] == "OUT_OF_STOCK"
    assert caught.value.details["errorMsg"] == "none left"
    code.refresh_from_db()
    assert code.state == State.FAILED
    assert code.redeemed_by_profile_id == ANN.id
    [attempt] = attempts_of(code)
    assert attempt.state == State.FAILED
    assert attempt.error_code == "REDEMPTION_FAILED"
    assert attempt.error_msg == "none left"
    assert attempt.response["errorCode"] == "OUT_OF_STOCK"


BAD_WEBHOOKS = {
    "down": (None, "transport error"),
    "http-500": (lambda _r: (500, {"success": True, "complete": True}), "HTTP 500"),
    "not-json": (lambda _r: (200, b"<html>oops</html>"), "malformed reply"),
    "json-array": (lambda _r: (200, b"[true]"), "malformed reply"),
    "success-as-string": (lambda _r: (200, {"success": "yes", "complete": True}), "malformed"),
    "complete-missing": (lambda _r: (200, {"success": True}), "malformed"),
    "redirect": (lambda _r: (302, b""), "HTTP 302"),
    "oversized": (lambda _r: (200, b" " * (65 * 1024)), "larger than 64 KB"),
    "sync-success-incomplete": (lambda _r: (200, ACCEPTED), "must reply complete:true"),
}


@TX
@pytest.mark.parametrize("case", list(BAD_WEBHOOKS))
def test_a_webhook_that_is_down_or_answers_badly_fails_with_script_failure(case, webhook):
    behaviour, message = BAD_WEBHOOKS[case]
    if behaviour is None:
        ct = make_type(closed_port_url())
    else:
        webhook.behaviour = behaviour
        ct = make_type(webhook.url)
    code = add_code(ct)

    with pytest.raises(exc.ScriptFailureError) as caught:
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert caught.value.http_status == 502
    code.refresh_from_db()
    assert code.state == State.FAILED
    [attempt] = attempts_of(code)
    assert attempt.state == State.FAILED
    assert attempt.error_code == "REDEMPTION_CODE_SCRIPT_FAILURE"
    assert message in attempt.error_msg


@TX
def test_a_webhook_slower_than_the_timeout_fails_within_the_timeout(webhook):
    def slow(_request):
        time.sleep(2)
        return 200, DONE

    webhook.behaviour = slow
    code = add_code(make_type(webhook.url, timeout=1))

    started = time.monotonic()
    with pytest.raises(exc.ScriptFailureError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    assert time.monotonic() - started < 1.8
    code.refresh_from_db()
    assert code.state == State.FAILED
    assert attempts_of(code)[0].error_msg == "no reply within 1 s"


# --- payload and signature --------------------------------------------------------------------


@TX
@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_the_payload_has_exactly_the_fields_of_the_spec(shared, webhook):
    ct = make_type(webhook.url, shared=shared)
    code = None if shared else add_code(ct)

    redeem(
        actor=SYSTEM,
        profile=ANN,
        scan_code=scan_of(ct, code),
        custom_redemption_info={"platform": "ios"},
    )

    [seen] = webhook.seen
    body = seen.json
    assert set(body) == SPEC_PAYLOAD_KEYS
    record = code or SharedRedemption.objects.get(code_type=ct, profile_id=ANN.id)
    assert body == {
        "operation": "redeem",
        "scanCode": scan_of(ct, code),
        "redemptionCodeId": str(record.pk),
        "attempt": 1,
        "codeType": ct.name,
        "codeUseType": "MULTI" if shared else "SINGLE",
        "async": False,
        "customCodeInfo": {"reward": "sword"} if shared else {"gold": 100},
        "customRedemptionInfo": {"platform": "ios"},
        "profileId": "p-ann",
        "profileName": "Ann",
    }
    assert seen.headers["Content-Type"] == "application/json"


@TX
def test_the_signature_verifies_with_the_types_secret_and_not_after_rotation(webhook):
    ct = make_type(webhook.url)
    first, second = add_code(ct), add_code(ct)
    old_secret = ct.webhook_secret
    assert old_secret.startswith("whsec_")

    redeem(actor=SYSTEM, profile=ANN, scan_code=first.scan_code)
    new_secret = code_type_rotate_secret(actor=SYSTEM, name=ct.name).webhook_secret
    redeem(actor=SYSTEM, profile=ANN, scan_code=second.scan_code)

    before, after = webhook.seen
    for seen in (before, after):
        assert seen.headers[fulfillment.SIGNATURE_HEADER].startswith("t=")
    assert fulfillment.verify(old_secret, before.body, before.headers["X-Redemption-Signature"])
    assert new_secret != old_secret
    assert fulfillment.verify(new_secret, after.body, after.headers["X-Redemption-Signature"])
    assert not fulfillment.verify(old_secret, after.body, after.headers["X-Redemption-Signature"])
    assert not fulfillment.verify(new_secret, before.body, before.headers["X-Redemption-Signature"])


# --- asynchronous fulfilment ------------------------------------------------------------------


def start_async(webhook: WebhookServer, *, shared: bool = False, **type_options: Any):
    """Given an async type whose webhook accepts; ANN's redeem is left InProgress."""
    webhook.behaviour = lambda _r: (200, {**ACCEPTED, "customRedemptionInfo": {"ticket": "T-1"}})
    ct = make_type(webhook.url, shared=shared, is_async=True, **type_options)
    code = None if shared else add_code(ct)
    result = redeem(actor=SYSTEM, profile=ANN, scan_code=scan_of(ct, code))
    assert result.in_progress
    return ct, result.record


@TX
@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_async_accepted_then_finished_by_async_response(shared, webhook):
    ct, record = start_async(webhook, shared=shared, timeout=60)
    assert record.state == State.IN_PROGRESS
    assert record.custom_redemption_info == {"ticket": "T-1"}
    assert attempts_of(record)[0].state == State.IN_PROGRESS

    progressed = process_async_response(
        actor=SYSTEM,
        redemption_id=str(record.pk),
        attempt=1,
        async_response={**ACCEPTED, "customRedemptionInfo": {"ticket": "T-1", "step": 2}},
    )
    assert progressed.state == State.IN_PROGRESS
    assert progressed.version == record.version + 1

    done = process_async_response(
        actor=SYSTEM,
        redemption_id=record.pk,
        attempt=1,
        async_response={**DONE, "customRedemptionInfo": {"item": "sword-9"}},
    )

    assert done.state == State.REDEEMED
    assert done.redeemed_at is not None
    assert done.custom_redemption_info == {"item": "sword-9"}
    [attempt] = attempts_of(done)
    assert attempt.state == State.REDEEMED
    assert attempt.response == {**DONE, "customRedemptionInfo": {"item": "sword-9"}}
    assert webhook.calls == 1
    with pytest.raises(exc.RedeemedBySelfError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=scan_of(ct, None if shared else done))


@TX
def test_async_response_for_a_wrong_attempt_is_refused(webhook):
    _, record = start_async(webhook, timeout=60)

    for wrong in (0, 2, -1):
        with pytest.raises(exc.AttemptMismatchError):
            process_async_response(
                actor=SYSTEM, redemption_id=record.pk, attempt=wrong, async_response=DONE
            )

    record.refresh_from_db()
    assert record.state == State.IN_PROGRESS


@TX
@pytest.mark.parametrize("swept_first", [False, True], ids=["lazily", "after-sweep"])
def test_async_response_after_the_window_fails_the_attempt(swept_first, webhook):
    _, record = start_async(webhook, timeout=60)
    move_deadline_to_past(record)
    if swept_first:
        assert sweep_timeouts() == 1

    with pytest.raises(exc.AsyncTimeoutError):
        process_async_response(
            actor=SYSTEM, redemption_id=record.pk, attempt=1, async_response=DONE
        )

    record.refresh_from_db()
    assert record.state == State.FAILED
    [attempt] = attempts_of(record)
    assert attempt.state == State.FAILED
    assert attempt.error_code == "REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT"
    assert attempt.response == DONE  # the late answer is kept for support to see
    assert AuditEvent.objects.filter(action="attempt.late_reply", target_id=str(record.pk)).exists()


@TX
def test_async_response_for_a_type_that_is_not_async_is_refused(webhook):
    code = add_code(make_type(webhook.url, is_async=False))
    redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)
    plain = CodeFactory(state=State.AVAILABLE)

    for target in (code, plain):
        with pytest.raises(exc.TypeNotAsyncError):
            process_async_response(
                actor=SYSTEM, redemption_id=target.pk, attempt=1, async_response=DONE
            )


@TX
def test_async_response_twice_for_the_same_attempt_applies_once(webhook):
    _, record = start_async(webhook, timeout=60)
    done = process_async_response(
        actor=SYSTEM, redemption_id=record.pk, attempt=1, async_response=DONE
    )

    with pytest.raises(exc.NotInProgressError):
        process_async_response(
            actor=SYSTEM,
            redemption_id=record.pk,
            attempt=1,
            async_response={"success": False, "errorMsg": "changed my mind"},
        )

    record.refresh_from_db()
    assert record.state == State.REDEEMED
    assert record.version == done.version


@TX
def test_concurrent_async_responses_for_one_attempt_apply_exactly_once(webhook):
    _, record = start_async(webhook, timeout=60)
    barrier = threading.Barrier(4)

    def respond():
        barrier.wait()
        return process_async_response(
            actor=SYSTEM, redemption_id=record.pk, attempt=1, async_response=DONE
        )

    runs = [in_thread(respond) for _ in range(4)]
    for thread, _ in runs:
        thread.join(20)

    outcomes = sorted(out.get("outcome", repr(out.get("crash"))) for _, out in runs)
    assert outcomes == ["REDEMPTION_CODE_NOT_IN_PROGRESS"] * 3 + [State.REDEEMED]


@TX
def test_async_failure_reported_later_fails_the_code(webhook):
    _, record = start_async(webhook, timeout=60)

    failed = process_async_response(
        actor=SYSTEM,
        redemption_id=record.pk,
        attempt=1,
        async_response={"success": False, "complete": True, "errorCode": 7, "errorMsg": "no"},
    )

    assert failed.state == State.FAILED
    [attempt] = attempts_of(failed)
    assert (attempt.error_code, attempt.error_msg) == ("REDEMPTION_FAILED", "no")
    assert attempt.response["errorCode"] == 7


BAD_ASYNC_RESPONSES = {
    "not-an-object": ["success"],
    "unknown-field": {**DONE, "bonus": 1},
    "success-missing": {"complete": True},
    "complete-missing-on-success": {"success": True},
    "info-not-object": {**DONE, "customRedemptionInfo": "sword"},
    "info-too-large": {**DONE, "customRedemptionInfo": {"x": "y" * 17_000}},
    "errorMsg-not-string": {"success": False, "errorMsg": 5},
}


@TX
@pytest.mark.parametrize("case", list(BAD_ASYNC_RESPONSES))
def test_a_malformed_async_response_is_refused_and_changes_nothing(case, webhook):
    _, record = start_async(webhook, timeout=60)

    with pytest.raises(exc.AsyncBadResponseError):
        process_async_response(
            actor=SYSTEM,
            redemption_id=record.pk,
            attempt=1,
            async_response=BAD_ASYNC_RESPONSES[case],
        )

    after = Code.objects.get(pk=record.pk)
    assert (after.state, after.version) == (State.IN_PROGRESS, record.version)


@TX
def test_async_response_for_an_unknown_id_or_a_bad_attempt_is_refused(webhook):
    _, record = start_async(webhook, timeout=60)
    shared_ct = make_type(webhook.url, shared=True, is_async=True)
    anchor = Code.objects.get(code_type=shared_ct, is_shared_anchor=True)

    for unknown in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", anchor.pk):
        with pytest.raises(exc.CodeByIdNotFoundError):
            process_async_response(
                actor=SYSTEM, redemption_id=unknown, attempt=1, async_response=DONE
            )
    for bad in ("1", 1.0, True, None):
        with pytest.raises(exc.InvalidParameterError):
            process_async_response(
                actor=SYSTEM, redemption_id=record.pk, attempt=bad, async_response=DONE
            )


# --- timeouts ---------------------------------------------------------------------------------


@TX
def test_sweep_fails_stale_attempts_and_only_those(webhook):
    _, personal = start_async(webhook, timeout=60)
    shared_ct, shared = start_async(webhook, shared=True, timeout=60)
    _, patient = start_async(webhook, timeout=3600)
    assert CodeType.objects.get(pk=shared_ct.pk).redemption_count == 1

    later = timezone.now() + timedelta(seconds=61)
    assert sweep_timeouts(now=later) == 2
    assert sweep_timeouts(now=later) == 0

    for record in (personal, shared):
        record.refresh_from_db()
        assert record.state == State.FAILED
        [attempt] = attempts_of(record)
        assert attempt.error_code == "REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT"
        assert attempt.finished_at is not None
    patient.refresh_from_db()
    assert patient.state == State.IN_PROGRESS
    assert CodeType.objects.get(pk=shared_ct.pk).redemption_count == 0


@TX
def test_a_sync_attempt_whose_caller_died_is_swept_after_its_call_budget(webhook):
    code = add_code(make_type(webhook.url, timeout=3600))
    Code.objects.filter(pk=code.pk).update(
        state=State.IN_PROGRESS, current_attempt=1, redeemed_by_profile_id=ANN.id
    )
    now = timezone.now()
    Attempt.objects.create(
        code=code,
        attempt=1,
        profile_id=ANN.id,
        started_at=now,
        deadline_at=now + timedelta(seconds=15),  # what attempt_deadline() gives a sync type
    )

    assert sweep_timeouts(now=now + timedelta(seconds=14)) == 0
    assert sweep_timeouts(now=now + timedelta(seconds=16)) == 1

    code.refresh_from_db()
    assert code.state == State.FAILED


@TX
def test_sweep_closes_attempt_rows_whose_record_moved_on_and_does_not_loop(webhook):
    _, record = start_async(webhook, timeout=60)
    # Some other path finished the record without closing its attempt row.
    Code.objects.filter(pk=record.pk).update(state=State.REDEEMED, redeemed_at=timezone.now())
    version = Code.objects.get(pk=record.pk).version

    later = timezone.now() + timedelta(seconds=61)
    assert sweep_timeouts(now=later) == 1
    assert sweep_timeouts(now=later) == 0

    [attempt] = attempts_of(record)
    assert attempt.state == State.FAILED
    assert attempt.error_msg == ABANDONED_MSG
    after = Code.objects.get(pk=record.pk)
    assert (after.state, after.version) == (State.REDEEMED, version)


@TX
def test_a_redeem_touching_a_stale_attempt_fails_it_lazily_and_may_retry(webhook):
    _, record = start_async(webhook, timeout=60, max_retries=1)

    for profile in (ANN, BOB):
        with pytest.raises(exc.RedemptionInProgressError):
            redeem(actor=SYSTEM, profile=profile, scan_code=record.scan_code)

    move_deadline_to_past(record)
    with pytest.raises(exc.AttemptedByMismatchError):
        redeem(actor=SYSTEM, profile=BOB, scan_code=record.scan_code)
    assert Code.objects.get(pk=record.pk).state == State.FAILED

    again = redeem(actor=SYSTEM, profile=ANN, scan_code=record.scan_code)

    assert again.in_progress
    assert again.record.current_attempt == 2
    first, second = attempts_of(record)
    assert first.error_code == "REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT"
    assert second.state == State.IN_PROGRESS
    assert [seen.json["attempt"] for seen in webhook.seen] == [1, 2]


@TX
def test_a_reply_after_the_sweep_closed_the_attempt_is_kept_but_changes_nothing(webhook):
    entered, release = threading.Event(), threading.Event()

    def late(_request):
        entered.set()
        release.wait(8)
        return 200, {**DONE, "customRedemptionInfo": {"item": "late"}}

    webhook.behaviour = late
    code = add_code(make_type(webhook.url, max_retries=1))
    thread, out = in_thread(lambda: redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code))
    try:
        assert entered.wait(8)
        assert sweep_timeouts(now=timezone.now() + timedelta(minutes=1)) == 1
    finally:
        release.set()
        thread.join(15)

    assert out == {"outcome": "REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT"}
    code.refresh_from_db()
    assert code.state == State.FAILED
    assert code.custom_redemption_info == {}
    [attempt] = attempts_of(code)
    assert attempt.response == {**DONE, "customRedemptionInfo": {"item": "late"}}
    webhook.behaviour = lambda _r: (200, DONE)
    assert redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code).record.current_attempt == 2


@TX
def test_a_reply_from_before_a_staff_reset_does_not_finish_the_next_redemption(webhook):
    entered, release = threading.Event(), threading.Event()

    def behaviour(request):
        if request["profileId"] == ANN.id:
            entered.set()
            release.wait(8)
            return 200, DONE
        return 200, ACCEPTED

    webhook.behaviour = behaviour
    code = add_code(make_type(webhook.url, is_async=True, timeout=60))
    thread, out = in_thread(lambda: redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code))
    try:
        assert entered.wait(8)
        code_reset(actor=SYSTEM, scan_code=code.scan_code, state=State.AVAILABLE)
        assert redeem(actor=SYSTEM, profile=BOB, scan_code=code.scan_code).in_progress
    finally:
        release.set()
        thread.join(15)

    assert out == {"outcome": "REDEMPTION_FAILED"}
    code.refresh_from_db()
    assert (code.state, code.redeemed_by_profile_id, code.current_attempt) == (
        State.IN_PROGRESS,
        BOB.id,
        1,
    )
    [attempt] = attempts_of(code)
    assert (attempt.profile_id, attempt.state, attempt.response) == (
        BOB.id,
        State.IN_PROGRESS,
        ACCEPTED,
    )


# --- retries ----------------------------------------------------------------------------------


@TX
def test_retries_only_by_the_same_profile_and_only_up_to_max_retries(webhook):
    webhook.behaviour = lambda _r: (200, {"success": False, "errorMsg": "try later"})
    code = add_code(make_type(webhook.url, max_retries=2))

    results = [outcome(lambda: redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code))]
    results.append(outcome(lambda: redeem(actor=SYSTEM, profile=BOB, scan_code=code.scan_code)))
    results += [
        outcome(lambda: redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code))
        for _ in range(3)
    ]
    results.append(outcome(lambda: redeem(actor=SYSTEM, profile=BOB, scan_code=code.scan_code)))

    assert results == [
        "REDEMPTION_FAILED",
        "REDEMPTION_CODE_ATTEMPTED_BY_REDEEMED_BY_MISMATCH",
        "REDEMPTION_FAILED",
        "REDEMPTION_FAILED",
        "REDEMPTION_FAILED_MAX_RETRIES",
        "REDEMPTION_CODE_ATTEMPTED_BY_REDEEMED_BY_MISMATCH",
    ]
    code.refresh_from_db()
    assert (code.state, code.current_attempt, code.redeemed_by_profile_id) == (
        State.FAILED,
        3,
        ANN.id,
    )
    assert [a.attempt for a in attempts_of(code)] == [1, 2, 3]
    assert [seen.json["attempt"] for seen in webhook.seen] == [1, 2, 3]
    assert {seen.json["profileId"] for seen in webhook.seen} == {ANN.id}


@TX
@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_a_retry_that_succeeds_redeems(shared, webhook):
    answers = iter([(200, {"success": False}), (200, DONE)])
    webhook.behaviour = lambda _r: next(answers)
    ct = make_type(webhook.url, shared=shared, max_retries=1)
    code = None if shared else add_code(ct)
    scan = scan_of(ct, code)

    with pytest.raises(exc.RedemptionFailedError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=scan)
    result = redeem(actor=SYSTEM, profile=ANN, scan_code=scan, custom_redemption_info={"try": 2})

    assert result.record.state == State.REDEEMED
    assert result.record.current_attempt == 2
    assert [a.state for a in attempts_of(result.record)] == [State.FAILED, State.REDEEMED]
    assert webhook.seen[1].json["customRedemptionInfo"] == {"try": 2}
    with pytest.raises(exc.RedeemedBySelfError):
        redeem(actor=SYSTEM, profile=ANN, scan_code=scan)


# --- shared codes: the slot arithmetic --------------------------------------------------------


@TX
def test_shared_slots_follow_redeemed_plus_in_progress(webhook):
    answers: dict[str, list[dict[str, Any]]] = {
        "p-a": [{"success": False}, DONE],
        "p-b": [ACCEPTED, DONE],
        "p-c": [DONE],
    }
    webhook.behaviour = lambda request: (200, answers[request["profileId"]].pop(0))
    ct = make_type(
        webhook.url, shared=True, is_async=True, timeout=60, max_retries=1, max_redemptions=2
    )
    a, b, c = Profile("p-a"), Profile("p-b"), Profile("p-c")

    def step(profile: Profile) -> str:
        return outcome(lambda: redeem(actor=SYSTEM, profile=profile, scan_code=ct.scan_code))

    def count() -> int:
        held = SharedRedemption.objects.filter(
            code_type=ct, state__in=[State.REDEEMED, State.IN_PROGRESS]
        ).count()
        counted = CodeType.objects.get(pk=ct.pk).redemption_count
        assert counted == held
        assert 0 <= counted <= 2
        return counted

    assert (step(a), count()) == ("REDEMPTION_FAILED", 0)
    assert (step(b), count()) == (State.IN_PROGRESS, 1)
    assert (step(c), count()) == (State.REDEEMED, 2)
    assert (step(a), count()) == ("MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED", 2)
    assert SharedRedemption.objects.get(code_type=ct, profile_id="p-a").current_attempt == 1
    assert sweep_timeouts(now=timezone.now() + timedelta(seconds=61)) == 1
    assert count() == 1
    assert (step(a), count()) == (State.REDEEMED, 2)
    assert (step(b), count()) == ("MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED", 2)
    shared_redemption_delete(actor=SYSTEM, code_type_name=ct.name, profile_id="p-c")
    assert count() == 1
    assert (step(b), count()) == (State.REDEEMED, 2)
    assert (step(b), count()) == ("REDEMPTION_CODE_REDEEMED_BY_SELF", 2)


@TX
def test_concurrent_shared_redeems_never_count_beyond_the_cap_or_below_zero(webhook):
    # Profiles with an even number succeed, odd ones fail and give their slot back.
    webhook.behaviour = lambda request: (
        200,
        DONE if int(request["profileId"].split("-")[1]) % 2 == 0 else {"success": False},
    )
    ct = make_type(webhook.url, shared=True, max_redemptions=3)
    barrier = threading.Barrier(10)

    def attempt(n: int):
        barrier.wait()
        return redeem(actor=SYSTEM, profile=Profile(f"p-{n}"), scan_code=ct.scan_code)

    runs = [in_thread(lambda n=n: attempt(n)) for n in range(10)]
    for thread, _ in runs:
        thread.join(20)

    outcomes = [out.get("outcome", repr(out.get("crash"))) for _, out in runs]
    assert set(outcomes) <= {
        State.REDEEMED,
        "REDEMPTION_FAILED",
        "MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED",
    }
    redeemed = SharedRedemption.objects.filter(code_type=ct, state=State.REDEEMED).count()
    assert redeemed == outcomes.count(State.REDEEMED)
    assert 1 <= redeemed <= 3
    assert CodeType.objects.get(pk=ct.pk).redemption_count == redeemed
    assert not SharedRedemption.objects.filter(code_type=ct, state=State.IN_PROGRESS).exists()


# --- concurrency ------------------------------------------------------------------------------


@TX
@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_no_database_lock_is_held_while_the_webhook_runs(shared, webhook):
    entered, release = threading.Event(), threading.Event()

    def behaviour(request):
        if request["profileId"] == "p-slow":
            entered.set()
            release.wait(8)
        return 200, DONE

    webhook.behaviour = behaviour
    ct = make_type(webhook.url, shared=shared)
    slow_code = None if shared else add_code(ct)
    other_code = None if shared else add_code(ct)
    slow, out = in_thread(
        lambda: redeem(actor=SYSTEM, profile=Profile("p-slow"), scan_code=scan_of(ct, slow_code))
    )
    try:
        assert entered.wait(8), "the webhook was never called"
        # While the webhook sleeps: the attempt is committed and visible ...
        record = slow_code or SharedRedemption.objects.get(code_type=ct, profile_id="p-slow")
        record.refresh_from_db()
        assert record.state == State.IN_PROGRESS
        assert attempts_of(record)[0].state == State.IN_PROGRESS
        # ... another redeem of the same type runs to the end (SQLite: no write lock held) ...
        fast, fast_out = in_thread(
            lambda: redeem(
                actor=SYSTEM, profile=Profile("p-fast"), scan_code=scan_of(ct, other_code)
            )
        )
        fast.join(6)
        assert fast_out == {"outcome": State.REDEEMED}
        # ... and the rows the slow redeem touched are not locked (PostgreSQL: NOWAIT passes).
        with transaction.atomic():
            model = type(record)
            model.objects.select_for_update(nowait=True).get(pk=record.pk)
            CodeType.objects.select_for_update(nowait=True).get(pk=ct.pk)
        assert out == {}, "the slow redeem finished before the webhook answered"
    finally:
        release.set()
        slow.join(15)
    assert out == {"outcome": State.REDEEMED}


@TX
def test_twenty_concurrent_redeems_of_one_code_call_the_webhook_once(webhook):
    release = threading.Event()

    def slow(_request):
        release.wait(9)  # within the 10 s call budget
        return 200, DONE

    webhook.behaviour = slow
    code = add_code(make_type(webhook.url, timeout=10))
    barrier = threading.Barrier(20)

    def attempt(n: int):
        barrier.wait()
        return redeem(actor=SYSTEM, profile=Profile(f"p-{n}"), scan_code=code.scan_code)

    runs = [in_thread(lambda n=n: attempt(n)) for n in range(20)]
    try:
        assert wait_for(lambda: sum(1 for _, out in runs if out) >= 19, 15)
    finally:
        release.set()
        for thread, _ in runs:
            thread.join(20)

    outcomes = sorted(out.get("outcome", repr(out.get("crash"))) for _, out in runs)
    assert outcomes == ["REDEMPTION_IN_PROGRESS"] * 19 + [State.REDEEMED]
    assert webhook.calls == 1
    code.refresh_from_db()
    assert (code.state, code.current_attempt) == (State.REDEEMED, 1)
    assert webhook.seen[0].json["profileId"] == code.redeemed_by_profile_id
    assert len(attempts_of(code)) == 1


# --- the example receiver (examples/receiver.py) ----------------------------------------------


@TX
@pytest.mark.parametrize("mode", ["success", "slow"])
def test_example_receiver_grants_and_redeems(mode):
    ct = make_type("http://127.0.0.1:9/placeholder")
    with receiver_process("--secret", ct.webhook_secret, "--mode", mode, "--delay", "0.1") as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        code = add_code(ct)

        record = redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code).record

    assert record.state == State.REDEEMED
    assert record.custom_redemption_info == {"granted": True, "firstTime": True}


@TX
@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("fail", exc.RedemptionFailedError),
        ("error", exc.ScriptFailureError),
        ("garbage", exc.ScriptFailureError),
    ],
)
def test_example_receiver_modes_that_fail(mode, error):
    ct = make_type("http://127.0.0.1:9/placeholder")
    with receiver_process("--secret", ct.webhook_secret, "--mode", mode) as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        code = add_code(ct)

        with pytest.raises(error) as caught:
            redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)

    if mode == "fail":
        assert caught.value.details["errorCode"] == "OUT_OF_STOCK"
    assert Code.objects.get(pk=code.pk).state == State.FAILED


@TX
def test_example_receiver_refuses_requests_signed_with_a_rotated_secret():
    ct = make_type("http://127.0.0.1:9/placeholder")
    with receiver_process("--secret", ct.webhook_secret) as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        first, second = add_code(ct), add_code(ct)
        assert redeem(actor=SYSTEM, profile=ANN, scan_code=first.scan_code).record.state == (
            State.REDEEMED
        )
        code_type_rotate_secret(actor=SYSTEM, name=ct.name)

        with pytest.raises(exc.ScriptFailureError):
            redeem(actor=SYSTEM, profile=ANN, scan_code=second.scan_code)

    assert attempts_of(second)[0].error_msg == "HTTP 401"


@TX
def test_example_receiver_in_async_mode_finishes_through_async_response(webhook):
    ct = make_type("http://127.0.0.1:9/placeholder", is_async=True, timeout=60)
    portal = webhook.url.removesuffix("/hook")
    with receiver_process(
        "--secret",
        ct.webhook_secret,
        "--mode",
        "async",
        "--delay",
        "0.05",
        "--portal-url",
        portal,
        "--server-key",
        "rk_example",
    ) as url:
        CodeType.objects.filter(pk=ct.pk).update(fulfillment_url=url)
        code = add_code(ct)

        result = redeem(actor=SYSTEM, profile=ANN, scan_code=code.scan_code)
        assert result.in_progress
        assert wait_for(lambda: webhook.calls == 1)

    [callback] = webhook.seen
    assert callback.path == f"/api/v1/server/redemptions/{code.pk}/async-response"
    assert callback.headers["Authorization"] == "Bearer rk_example"
    body = callback.json
    record = process_async_response(
        actor=SYSTEM,
        redemption_id=code.pk,
        attempt=body["attempt"],
        async_response=body["asyncResponse"],
    )
    assert record.state == State.REDEEMED
    assert record.custom_redemption_info == {"granted": True, "firstTime": True}
