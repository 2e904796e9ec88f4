"""Every transition of SPEC §3.1, allowed and forbidden, from one parametrized table."""

from datetime import timedelta

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption.actors import Profile
from redemption.fulfillment import Reply
from redemption.models import TRANSITIONS, Attempt, Code, State
from redemption.services import (
    apply_reply,
    code_activate,
    code_invalidate,
    code_reset,
    redeem,
)
from redemption.transitions import STATE_ERRORS, can, guard
from tests.factories import CodeFactory, CodeTypeFactory

pytestmark = pytest.mark.django_db

ALL = list(State)


def make_code(state: str, **extra) -> Code:
    """A personal code in `state`, with the fields that state implies."""
    now = timezone.now()
    fields: dict = {"state": state}
    if state in {State.REDEEMED, State.IN_PROGRESS, State.FAILED}:
        fields |= {"redeemed_by_profile_id": "someone-else", "current_attempt": 1}
    if state == State.REDEEMED:
        fields["redeemed_at"] = now
    code = CodeFactory(**fields, **extra)
    if state in {State.IN_PROGRESS, State.FAILED}:
        Attempt.objects.create(
            code=code,
            attempt=1,
            profile_id="someone-else",
            state=state,
            started_at=now,
            deadline_at=now + timedelta(hours=1),
        )
    return code


def test_guard_accepts_exactly_the_table():
    for current in ALL:
        for target in ALL:
            allowed = target in TRANSITIONS[current]
            assert can(current, target) is allowed
            if allowed:
                guard(current, target)
            else:
                with pytest.raises(STATE_ERRORS[current]):
                    guard(current, target)


ACTIVATE = {
    State.INACTIVE: None,
    State.AVAILABLE: exc.CodeActiveError,
    State.IN_PROGRESS: exc.RedemptionInProgressError,
    State.REDEEMED: exc.CodeRedeemedError,
    State.INVALIDATED: exc.CodeInvalidatedError,
    State.FAILED: exc.RedemptionFailedError,
}
INVALIDATE = {
    State.INACTIVE: None,
    State.AVAILABLE: None,
    State.FAILED: None,
    State.IN_PROGRESS: exc.RedemptionInProgressError,
    State.REDEEMED: exc.CodeRedeemedError,
    State.INVALIDATED: exc.CodeInvalidatedError,
}
REDEEM = {
    State.AVAILABLE: None,
    State.INACTIVE: exc.CodeNotActiveError,
    State.IN_PROGRESS: exc.RedemptionInProgressError,
    State.REDEEMED: exc.RedeemedByOtherError,
    State.INVALIDATED: exc.CodeInvalidatedError,
    State.FAILED: exc.RedemptionFailedError,
}


@pytest.mark.parametrize(("start", "error"), ACTIVATE.items())
def test_activate(start, error, support):
    code = make_code(start)
    if error is None:
        code = code_activate(actor=support, scan_code=code.scan_code)
        assert code.state == State.AVAILABLE
        assert code.activated_at is not None
        assert code.version == 2
    else:
        with pytest.raises(error):
            code_activate(actor=support, scan_code=code.scan_code)
        assert Code.objects.get(pk=code.pk).state == start


@pytest.mark.parametrize(("start", "error"), INVALIDATE.items())
def test_invalidate(start, error, support):
    code = make_code(start)
    if error is None:
        code = code_invalidate(actor=support, scan_code=code.scan_code, reason="stolen stock")
        assert code.state == State.INVALIDATED
        assert code.invalidation_reason == "stolen stock"
        assert code.invalidated_at is not None
    else:
        with pytest.raises(error):
            code_invalidate(actor=support, scan_code=code.scan_code, reason="x")
        assert Code.objects.get(pk=code.pk).state == start


@pytest.mark.parametrize(("start", "error"), REDEEM.items())
def test_redeem_without_fulfilment(start, error, system_actor):
    code = make_code(start)
    if error is None:
        record = redeem(actor=system_actor, profile=Profile("me"), scan_code=code.scan_code).record
        assert record.state == State.REDEEMED
        assert record.redeemed_by_profile_id == "me"
        assert record.redeemed_at is not None
    else:
        with pytest.raises(error):
            redeem(actor=system_actor, profile=Profile("me"), scan_code=code.scan_code)
        assert Code.objects.get(pk=code.pk).state == start


def test_redeeming_your_own_redeemed_code_says_by_self_and_carries_the_record(system_actor):
    code = make_code(State.REDEEMED)
    with pytest.raises(exc.RedeemedBySelfError) as caught:
        redeem(actor=system_actor, profile=Profile("someone-else"), scan_code=code.scan_code)
    assert caught.value.record.pk == code.pk


@pytest.mark.parametrize("start", ALL)
@pytest.mark.parametrize("target", [State.INACTIVE, State.AVAILABLE])
def test_reset_one_code_from_any_state(start, target, support):
    code = make_code(start)

    code = code_reset(actor=support, scan_code=code.scan_code, state=target)

    assert code.state == target
    assert code.redeemed_by_profile_id is None
    assert code.redeemed_at is None
    assert code.current_attempt == 0
    assert not Attempt.objects.filter(code=code).exists()


def test_reset_refuses_other_targets(support):
    code = make_code(State.REDEEMED)
    with pytest.raises(exc.RedemptionError) as caught:
        code_reset(actor=support, scan_code=code.scan_code, state=State.REDEEMED)
    assert caught.value.code == "INVALID_PARAMETER_VALUE"


FULFILMENT_REPLIES = [
    (Reply(success=True, complete=True), State.REDEEMED),
    (Reply(success=False, complete=True, error_code="NO_STOCK"), State.FAILED),
    (Reply(success=False, complete=True, transport_error="HTTP 500"), State.FAILED),
]


@pytest.mark.parametrize(("reply", "end"), FULFILMENT_REPLIES)
def test_in_progress_moves_on_a_fulfilment_reply(reply, end, system_actor):
    code = make_code(State.IN_PROGRESS, code_type=CodeTypeFactory(fulfillment_url="http://x/"))

    record = apply_reply(
        actor=system_actor, owner_id=code.pk, shared=False, attempt_no=1, reply=reply
    )

    assert record.state == end
    attempt = Attempt.objects.get(code=code, attempt=1)
    assert attempt.state == end
    assert attempt.finished_at is not None


@pytest.mark.parametrize("start", [s for s in ALL if s != State.IN_PROGRESS])
def test_a_reply_for_a_code_not_in_progress_changes_nothing(start, system_actor):
    code = make_code(start)
    before = Code.objects.get(pk=code.pk)

    record = apply_reply(
        actor=system_actor,
        owner_id=code.pk,
        shared=False,
        attempt_no=1,
        reply=Reply(success=True, complete=True),
    )

    assert record.state == start
    assert record.version == before.version


def test_viewer_cannot_change_a_code(viewer):
    code = make_code(State.INACTIVE)
    with pytest.raises(exc.PermissionDeniedError):
        code_activate(actor=viewer, scan_code=code.scan_code)
    assert Code.objects.get(pk=code.pk).state == State.INACTIVE
