"""Fulfilment under concurrency: no lock held during the webhook, one call per code."""

import threading

import pytest
from django.db import transaction

from redemption.actors import Profile
from redemption.models import CodeType, SharedRedemption, State
from redemption.services import redeem
from tests.fulfilment import (
    DONE,
    SYSTEM,
    TX,
    add_code,
    attempts_of,
    in_thread,
    make_type,
    scan_of,
    wait_for,
)


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
