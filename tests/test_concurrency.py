"""Exactly-once redemption with real threads racing on a real database (SQLite and PostgreSQL)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from redemption.actors import Actor, Profile
from redemption.exceptions import RedemptionError
from redemption.models import Code, SharedRedemption, State
from redemption.services import redeem
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Enough threads to race hard, few enough to stay under PostgreSQL's connection limit
# while other test processes run.
WORKERS = 25


def race(calls: list[tuple[str, str]]) -> Counter[str]:
    """Run every (profile_id, scan_code) redeem at once; count outcomes by result or error code."""
    gate = threading.Barrier(min(WORKERS, len(calls)))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def one(call: tuple[str, str], wait: bool) -> None:
        profile_id, scan_code = call
        try:
            if wait:
                gate.wait(timeout=30)
            result = redeem(
                actor=Actor.profile(profile_id), profile=Profile(profile_id), scan_code=scan_code
            )
            outcome = "OK:" + result.record.state
        except RedemptionError as err:
            outcome = err.code
        finally:
            connection.close()
        with lock:
            outcomes[outcome] += 1

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(one, call, i < WORKERS) for i, call in enumerate(calls)]
        for f in futures:
            f.result()
    return outcomes


def test_fifty_concurrent_redeems_of_one_personal_code_have_one_winner(settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 1000
    code = CodeFactory(scan_code="RACE-0000-0001", state=State.AVAILABLE)

    outcomes = race([(f"p-{i}", "race 0000 0001") for i in range(50)])

    assert outcomes == Counter({"OK:Redeemed": 1, "REDEMPTION_CODE_REDEEMED_BY_OTHER": 49})
    code.refresh_from_db()
    assert code.state == State.REDEEMED
    assert code.version == 2
    assert code.redeemed_by_profile_id is not None


def test_shared_code_cap_of_twenty_holds_against_a_hundred_profiles():
    shared = SharedCodeTypeFactory(scan_code="CAPPED20", max_redemptions=20)

    outcomes = race([(f"fan-{i}", "capped20") for i in range(100)])

    assert outcomes == Counter({"OK:Redeemed": 20, "MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED": 80})
    shared.refresh_from_db()
    assert shared.redemption_count == 20
    assert SharedRedemption.objects.filter(code_type=shared, state=State.REDEEMED).count() == 20


def test_one_profile_redeeming_a_shared_code_ten_times_at_once_succeeds_once(settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 1000
    shared = SharedCodeTypeFactory(scan_code="ONCEEACH")

    outcomes = race([("same-profile", "ONCEEACH")] * 10)

    assert outcomes == Counter({"OK:Redeemed": 1, "REDEMPTION_CODE_REDEEMED_BY_SELF": 9})
    shared.refresh_from_db()
    assert shared.redemption_count == 1
    assert SharedRedemption.objects.filter(code_type=shared).count() == 1


def test_many_codes_redeemed_concurrently_each_exactly_once(settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 1000
    ct = CodeTypeFactory()
    codes = [CodeFactory(code_type=ct, scan_code=f"MANY-{i:04d}-AAAA") for i in range(20)]
    # Every code is raced by three profiles.
    calls = [(f"p-{i}-{k}", c.scan_code) for i, c in enumerate(codes) for k in range(3)]

    outcomes = race(calls)

    assert outcomes["OK:Redeemed"] == 20
    assert outcomes["REDEMPTION_CODE_REDEEMED_BY_OTHER"] == 40
    assert Code.objects.filter(state=State.REDEEMED).count() == 20
    assert set(Code.objects.values_list("redeemed_by_profile_id", flat=True)) <= {
        p for p, _ in calls
    }
