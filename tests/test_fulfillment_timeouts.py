"""Attempts past their window: failed lazily or by the sweep; late replies change nothing."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption.models import Attempt, Code, CodeType, State
from redemption.services import code_reset, redeem, sweep_timeouts
from redemption.services.timeouts import ABANDONED_MSG
from tests.fulfilment import (
    ACCEPTED,
    ANN,
    BOB,
    DONE,
    SYSTEM,
    TX,
    add_code,
    attempts_of,
    in_thread,
    make_type,
    move_deadline_to_past,
    start_async,
)


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
