"""Retrying a failed attempt: only by the same profile, only while attempts are left."""

import pytest

from redemption import exceptions as exc
from redemption.models import State
from redemption.services import redeem
from tests.fulfilment import (
    ANN,
    BOB,
    DONE,
    SYSTEM,
    TX,
    add_code,
    attempts_of,
    make_type,
    outcome,
    scan_of,
)


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
