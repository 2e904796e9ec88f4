"""Every state transition, allowed and forbidden: the tables in models.py against the services.

The tables are checked against the specified diagram once; then every service that changes a
state is run from every state and must move the record exactly when the table says it may.
"""

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.fulfillment import Reply
from redemption.models import (
    PERSONAL_MOVES,
    RESETS,
    SHARED_MOVES,
    SHARED_TRANSITIONS,
    TRANSITIONS,
    Attempt,
    AuditEvent,
    Batch,
    Code,
    CodeType,
    Move,
    SharedRedemption,
    State,
    sources_of,
    targets_of,
)
from redemption.services import (
    apply_reply,
    batch_invalidate,
    code_activate,
    code_invalidate,
    code_reset,
    redeem,
    sweep_timeouts,
)
from redemption.transitions import STATE_ERRORS, can, guard
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory
from tests.fulfilment import ACCEPTED, SYSTEM, TX, make_type

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
def test_reset_one_code_from_any_state(start, target, ops):
    code = make_code(start)

    code = code_reset(actor=ops, scan_code=code.scan_code, state=target)

    assert code.state == target
    assert code.redeemed_by_profile_id is None
    assert code.redeemed_at is None
    assert code.current_attempt == 0
    assert not Attempt.objects.filter(code=code).exists()


# Who may reset one code, by the state it is in: re-issuing a redeemed code's value needs Ops.
RESET_ROLES = [
    *((start, "support", True) for start in ALL if start != State.REDEEMED),
    (State.REDEEMED, "support", False),
    *((start, "ops", True) for start in ALL),
    *((start, "viewer", False) for start in ALL),
]


@pytest.mark.parametrize(("start", "role", "allowed"), RESET_ROLES)
def test_who_may_reset_a_code_depends_on_its_state(start, role, allowed, request):
    actor = request.getfixturevalue(role)
    code = make_code(start)

    if allowed:
        code_reset(actor=actor, scan_code=code.scan_code, state=State.AVAILABLE)
    else:
        with pytest.raises(exc.PermissionDeniedError):
            code_reset(actor=actor, scan_code=code.scan_code, state=State.AVAILABLE)

    code.refresh_from_db()
    assert code.state == (State.AVAILABLE if allowed else start)
    assert AuditEvent.objects.filter(action="code.reset").count() == (1 if allowed else 0)


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


# --- the tables themselves -----------------------------------------------------------------

# The specified diagram, written out by hand so that a change to either side fails.
SPECIFIED_PERSONAL = {
    ("Inactive", "activate", "Available"),
    ("Inactive", "invalidate", "Invalidated"),
    ("Available", "invalidate", "Invalidated"),
    ("Failed", "invalidate", "Invalidated"),
    ("Available", "redeem", "Redeemed"),
    ("Available", "attempt", "InProgress"),
    ("InProgress", "succeed", "Redeemed"),
    ("InProgress", "fail", "Failed"),
    ("Failed", "retry", "InProgress"),
}
SPECIFIED_SHARED = {
    ("InProgress", "succeed", "Redeemed"),
    ("InProgress", "fail", "Failed"),
    ("Failed", "retry", "InProgress"),
}
SHARED_STATES = list(SHARED_TRANSITIONS)


def test_the_tables_are_the_specified_diagram():
    assert set(PERSONAL_MOVES) == SPECIFIED_PERSONAL
    assert set(SHARED_MOVES) == SPECIFIED_SHARED
    assert set(RESETS) == {(s, "reset", t) for s in ALL for t in ("Inactive", "Available")}
    assert SHARED_STATES == ["InProgress", "Redeemed", "Failed"]


@pytest.mark.parametrize("shared", [False, True], ids=["personal", "shared"])
def test_sources_and_targets_read_the_same_table(shared):
    table = SHARED_TRANSITIONS if shared else TRANSITIONS
    for source, targets in table.items():
        assert targets_of(source, shared=shared) == targets
        for target in ALL:
            assert (source in sources_of(target, shared=shared)) is (target in targets)
    # A reset is asked for by name; it is not part of the lifecycle.
    assert sources_of(State.AVAILABLE, move=Move.RESET) == frozenset(ALL)
    assert State.REDEEMED not in sources_of(State.AVAILABLE)
    assert sources_of(State.AVAILABLE, shared=True, move=Move.RESET) == frozenset()


# --- every service, from every state --------------------------------------------------------


def code_in(state: str, *, code_type: CodeType, live_attempt: bool = False) -> Code:
    """A personal code in `state` after someone-else's attempt 1, so that every condition but
    the state lets each service act: the attempt is open and overdue with `live_attempt`,
    else open (not due) on an InProgress code and finished on any other."""
    now = timezone.now()
    code = CodeFactory(
        code_type=code_type,
        state=state,
        redeemed_by_profile_id="someone-else",
        redeemed_at=now if state == State.REDEEMED else None,
        current_attempt=1,
    )
    open_attempt = live_attempt or state == State.IN_PROGRESS
    Attempt.objects.create(
        code=code,
        attempt=1,
        profile_id="someone-else",
        state=State.IN_PROGRESS if open_attempt else State.FAILED,
        started_at=now - timedelta(seconds=2),
        deadline_at=now - timedelta(seconds=1) if live_attempt else now + timedelta(hours=1),
        finished_at=None if open_attempt else now,
    )
    return code


def shared_in(state: str, *, code_type: CodeType, live_attempt: bool = False) -> SharedRedemption:
    """Profile someone-else's redemption of a shared code type, in `state` after attempt 1;
    with `live_attempt`, that attempt is still open (overdue)."""
    now = timezone.now()
    record = SharedRedemption.objects.create(
        code_type=code_type,
        profile_id="someone-else",
        state=state,
        current_attempt=1,
        created_at=now,
        redeemed_at=now if state == State.REDEEMED else None,
        updated_at=now,
    )
    past = now - timedelta(seconds=1)
    Attempt.objects.create(
        shared=record,
        attempt=1,
        profile_id="someone-else",
        state=State.IN_PROGRESS if live_attempt else state,
        started_at=past,
        deadline_at=past if live_attempt else now + timedelta(hours=1),
    )
    return record


@dataclass(frozen=True)
class Service:
    """A service that changes state, the move(s) it makes, and how a test calls it."""

    name: str
    target: State
    moves: frozenset[Move]
    call: Callable[[Any, Actor], object]
    shared: bool = False
    live_attempt: bool = False  # it acts on an open attempt (replies and timeouts)

    def cases(self):
        kind = "shared" if self.shared else "personal"
        for start in SHARED_STATES if self.shared else ALL:
            yield pytest.param(self, start, id=f"{kind}-{self.name}-from-{start}")

    def allows(self, start: str) -> bool:
        return any(start in sources_of(self.target, shared=self.shared, move=m) for m in self.moves)


def _batch_invalidate(record, actor):
    batch = Batch.objects.create(code_type=record.code_type, kind="add", created_at=timezone.now())
    Code.objects.filter(pk=record.pk).update(batch=batch)
    batch_invalidate(actor=actor, batch_id=batch.pk, reason="leak")


def _reply(success: bool):
    def call(record, actor):
        apply_reply(
            actor=actor,
            owner_id=record.pk,
            shared=isinstance(record, SharedRedemption),
            attempt_no=1,
            reply=Reply(success=success, complete=True),
        )

    return call


def _reset(to: str):
    return lambda record, actor: code_reset(actor=actor, scan_code=record.scan_code, state=to)


def _redeem(record, actor):
    scan_code = record.code_type.scan_code if isinstance(record, SharedRedemption) else None
    redeem(actor=actor, profile=Profile("someone-else"), scan_code=scan_code or record.scan_code)


def _sweep(record, actor):
    sweep_timeouts()


def _one(move: Move) -> frozenset[Move]:
    return frozenset({move})


SERVICES = [
    Service(
        "activate",
        State.AVAILABLE,
        _one(Move.ACTIVATE),
        lambda r, a: code_activate(actor=a, scan_code=r.scan_code),
    ),
    Service(
        "invalidate",
        State.INVALIDATED,
        _one(Move.INVALIDATE),
        lambda r, a: code_invalidate(actor=a, scan_code=r.scan_code, reason="lost"),
    ),
    Service("batch-invalidate", State.INVALIDATED, _one(Move.INVALIDATE), _batch_invalidate),
    Service("redeem-no-fulfilment", State.REDEEMED, _one(Move.REDEEM), _redeem),
    Service("reset-to-inactive", State.INACTIVE, _one(Move.RESET), _reset(State.INACTIVE)),
    Service("reset-to-available", State.AVAILABLE, _one(Move.RESET), _reset(State.AVAILABLE)),
    *(
        service
        for shared in (False, True)
        for service in (
            Service(
                "reply-success", State.REDEEMED, _one(Move.SUCCEED), _reply(True), shared, True
            ),
            Service("reply-fail", State.FAILED, _one(Move.FAIL), _reply(False), shared, True),
            Service(
                "timeout",
                State.FAILED,
                _one(Move.FAIL),
                lambda r, a: sweep_timeouts(),
                shared,
                True,
            ),
        )
    ),
]
# Services Support may not call from every state (a reset of a Redeemed code needs Ops).
OPS_SERVICES = {"batch-invalidate", "reset-to-inactive", "reset-to-available"}
# Redeem with fulfilment (first attempt, or retry) calls a webhook, outside any transaction.
REDEEM_WITH_FULFILMENT = [
    Service("redeem-fulfilment", State.IN_PROGRESS, frozenset({Move.ATTEMPT, Move.RETRY}), _redeem),
    Service("shared-redeem-again", State.IN_PROGRESS, _one(Move.RETRY), _redeem, shared=True),
]


def _then_moved_only_if_the_table_allows(service: Service, start: str, record, before: int):
    record.refresh_from_db()
    if service.allows(start):
        assert record.state == service.target
        assert record.version > before
    else:
        assert record.state == start
        assert record.version == before


@pytest.mark.parametrize(("service", "start"), [c for s in SERVICES for c in s.cases()])
def test_each_service_moves_a_record_exactly_where_the_table_allows(service, start, support, ops):
    # Replies and timeouts concern types with fulfilment; the other services, types without.
    url = "http://127.0.0.1:9/" if service.live_attempt else ""
    ct = (SharedCodeTypeFactory if service.shared else CodeTypeFactory)(fulfillment_url=url)
    given = shared_in if service.shared else code_in
    record = given(start, code_type=ct, live_attempt=service.live_attempt)
    before = record.version

    with suppress(exc.RedemptionError):  # a refusal is judged by the record's state
        service.call(record, ops if service.name in OPS_SERVICES else support)

    _then_moved_only_if_the_table_allows(service, start, record, before)


@TX
@pytest.mark.parametrize(
    ("service", "start"), [c for s in REDEEM_WITH_FULFILMENT for c in s.cases()]
)
def test_redeem_with_fulfilment_starts_an_attempt_exactly_where_the_table_allows(
    service, start, webhook
):
    webhook.behaviour = lambda _r: (200, ACCEPTED)  # the attempt stays InProgress
    ct = make_type(webhook.url, shared=service.shared, is_async=True, max_retries=3, timeout=3600)
    record = (shared_in if service.shared else code_in)(start, code_type=ct)
    before, attempt_before = record.version, record.current_attempt

    with suppress(exc.RedemptionError):
        service.call(record, SYSTEM)

    _then_moved_only_if_the_table_allows(service, start, record, before)
    started = service.allows(start)
    assert webhook.calls == (1 if started else 0)
    assert record.current_attempt == attempt_before + (1 if started else 0)


def test_every_arrow_of_the_tables_is_taken_by_some_service():
    taken = set()
    for service in SERVICES + REDEEM_WITH_FULFILMENT:
        table = SHARED_MOVES if service.shared else PERSONAL_MOVES + RESETS
        taken |= {
            (s, m, t, service.shared)
            for s, m, t in table
            if t == service.target and m in service.moves
        }
    assert taken == {(*arrow, False) for arrow in PERSONAL_MOVES + RESETS} | {
        (*arrow, True) for arrow in SHARED_MOVES
    }
