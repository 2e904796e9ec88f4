"""Async fulfilment: the webhook accepts, the async response finishes the attempt."""

import threading

import pytest

from redemption import exceptions as exc
from redemption.models import AuditEvent, Code, State
from redemption.services import process_async_response, redeem, sweep_timeouts
from tests.factories import CodeFactory
from tests.fulfilment import (
    ACCEPTED,
    ANN,
    DONE,
    SYSTEM,
    TX,
    add_code,
    attempts_of,
    in_thread,
    make_type,
    move_deadline_to_past,
    scan_of,
    start_async,
)


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
