"""Deleting an empty code type while codes are added to it or its shared code is redeemed, with
real threads on a real database: either the type goes and nothing of it is left, or it stays
with everything that was added; never an orphan, a half-applied delete or a wrong error."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from redemption.actors import Actor, Profile
from redemption.exceptions import RedemptionError
from redemption.models import AuditEvent, Code, CodeType, SharedRedemption
from redemption.services import code_add, code_type_delete, redeem
from tests.factories import CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db(transaction=True)

ADDERS = 6
ROUNDS = 4


def _race(calls) -> Counter[str]:
    gate = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def one(call) -> None:
        label, fn = call
        try:
            gate.wait(timeout=30)
            fn()
            outcome = f"{label}:ok"
        except RedemptionError as err:
            outcome = f"{label}:{err.code}"
        finally:
            connection.close()
        with lock:
            outcomes[outcome] += 1

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        for future in [pool.submit(one, call) for call in calls]:
            future.result()
    return outcomes


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_delete_racing_adds_leaves_the_type_whole_or_gone(round_no):
    system = Actor.system("race")
    ct = CodeTypeFactory(name=f"race-{round_no}")
    calls = [("delete", lambda: code_type_delete(actor=system, name=ct.name))]
    calls += [
        (
            "add",
            lambda i=i: code_add(
                actor=system, code_type_name=ct.name, scan_code=f"RACE-{round_no}-{i:04d}"
            ),
        )
        for i in range(ADDERS)
    ]

    outcomes = _race(calls)

    added = outcomes["add:ok"]
    if outcomes["delete:ok"]:
        assert not CodeType.objects.filter(pk=ct.pk).exists()
        assert not Code.objects.filter(code_type_id=ct.pk).exists()
        assert added == 0
        assert outcomes["add:REDEMPTION_CODE_TYPE_NOT_FOUND"] == ADDERS
        assert AuditEvent.objects.filter(action="code_type.delete").count() == 1
    else:
        assert outcomes["delete:REDEMPTION_CODE_TYPE_NOT_EMPTY"] == 1
        assert Code.objects.filter(code_type_id=ct.pk).count() == added
        assert added >= 1 and outcomes["add:REDEMPTION_CODE_TYPE_NOT_FOUND"] == ADDERS - added
        assert not AuditEvent.objects.filter(action="code_type.delete").exists()
    assert sum(outcomes.values()) == ADDERS + 1


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_delete_racing_redeems_of_a_shared_type_never_loses_a_redemption(round_no):
    system = Actor.system("race")
    ct = SharedCodeTypeFactory(name=f"race-shared-{round_no}", scan_code=f"RACESHARED{round_no}")
    calls = [("delete", lambda: code_type_delete(actor=system, name=ct.name))]
    calls += [
        (
            "redeem",
            lambda i=i: redeem(
                actor=system, profile=Profile(f"p-{i}"), scan_code=f"RACESHARED{round_no}"
            ),
        )
        for i in range(ADDERS)
    ]

    outcomes = _race(calls)

    redeemed = outcomes["redeem:ok"]
    kept = SharedRedemption.objects.filter(code_type_id=ct.pk).count()
    assert kept == redeemed
    if outcomes["delete:ok"]:
        assert redeemed == 0 and not CodeType.objects.filter(pk=ct.pk).exists()
        assert outcomes["redeem:REDEMPTION_CODE_NOT_FOUND"] == ADDERS
    else:
        assert outcomes["delete:REDEMPTION_CODE_TYPE_NOT_EMPTY"] == 1
        assert redeemed >= 1
