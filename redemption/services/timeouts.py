"""Attempts that run past their window: fail them lazily when touched, or in a periodic sweep."""

from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from redemption import exceptions as exc
from redemption import fulfillment
from redemption.actors import Actor
from redemption.db import claims
from redemption.models import Attempt, Code, CodeType, Move, SharedRedemption, State
from redemption.services._common import (
    Record,
    attempt_owner,
    audit,
    record_for_update,
    record_scan_code,
)
from redemption.transitions import guard

# A synchronous attempt is finished by the request that made the call, within
# call_seconds(timeoutSeconds). Its window adds this grace so that a timeout sweep can only
# ever close attempts whose caller died, never race a reply that is being recorded.
SYNC_GRACE_SECONDS = 5
# The reason a timed-out attempt failed, and the one an abandoned attempt row is closed with.
TIMEOUT_MSG = "no complete reply within timeoutSeconds"
ABANDONED_MSG = "closed: the record was no longer waiting for this attempt"


def attempt_deadline(ct: CodeType, started_at: datetime) -> datetime:
    """When an attempt started at `started_at` times out.

    An async attempt has timeoutSeconds for its async response; a synchronous one the webhook
    call's own budget plus a grace (see SYNC_GRACE_SECONDS).
    """
    if ct.fulfillment_async:
        return started_at + timedelta(seconds=ct.fulfillment_timeout_seconds)
    seconds = fulfillment.call_seconds(ct.fulfillment_timeout_seconds) + SYNC_GRACE_SECONDS
    return started_at + timedelta(seconds=seconds)


def expire_if_due(
    *, code: Code | None = None, shared: SharedRedemption | None = None, now: datetime | None = None
) -> bool:
    """Fail an InProgress record whose attempt window has passed; update the object passed in."""
    owner: Record = code if code is not None else shared  # type: ignore[assignment]
    is_shared = shared is not None
    now = now or timezone.now()
    # Cheap unlocked look first: most touches find nothing due and need no write transaction.
    if not Attempt.objects.filter(
        **attempt_owner(owner.pk, is_shared), state=State.IN_PROGRESS, deadline_at__lte=now
    ).exists():
        return False
    expired, _, locked = _expire(owner_id=owner.pk, shared=is_shared, now=now)
    _copy_state(owner, locked)
    return expired


def _expire(*, owner_id: UUID, shared: bool, now: datetime) -> tuple[bool, int, Record | None]:
    """Under the owner's lock: fail its current attempt if due; close abandoned attempt rows.

    Returns (whether the current attempt timed out, how many attempt rows were closed, owner).

    An attempt row is abandoned when it is still InProgress but its owner no longer waits for
    it (the owner is in another state or on another attempt). Nothing finishes such a row, so
    it is closed here; otherwise every sweep would pick it up again.
    """
    stamp = timezone.now()
    with transaction.atomic():
        locked = record_for_update(owner_id, shared)
        if locked is None:
            return False, 0, None
        rows = Attempt.objects.filter(**attempt_owner(owner_id, shared), state=State.IN_PROGRESS)
        waiting = locked.state == State.IN_PROGRESS
        abandoned = rows.exclude(attempt=locked.current_attempt) if waiting else rows
        closed = abandoned.update(
            state=State.FAILED,
            finished_at=stamp,
            error_code=exc.AsyncTimeoutError.code,
            error_msg=ABANDONED_MSG,
        )
        if not waiting:
            return False, closed, locked
        row = rows.filter(attempt=locked.current_attempt).first()
        if row is None or row.deadline_at > now:
            return False, closed, locked
        row.state = State.FAILED
        row.finished_at = stamp
        row.error_code = exc.AsyncTimeoutError.code
        row.error_msg = TIMEOUT_MSG
        row.save(update_fields=["state", "finished_at", "error_code", "error_msg"])
        guard(locked.state, State.FAILED, shared=shared, move=Move.FAIL)
        locked.state = State.FAILED
        locked.version += 1
        locked.updated_at = stamp
        locked.save(update_fields=["state", "version", "updated_at"])
        if shared:
            claims.code_type_give_slot_back(code_type_id=locked.code_type_id)
        audit(
            actor=Actor.system("timeout"),
            action="attempt.timeout",
            code_type_name=locked.code_type.name,
            target_id=str(locked.pk),
            scan_code=record_scan_code(locked),
            profile_id=row.profile_id,
            details={"attempt": row.attempt},
            at=stamp,
        )
    return True, closed + 1, locked


def _copy_state(target: Record, source: Record | None) -> None:
    if source is None:
        return
    for name in (
        "state",
        "version",
        "updated_at",
        "current_attempt",
        "redeemed_at",
        "custom_redemption_info",
    ):
        setattr(target, name, getattr(source, name))


def sweep_timeouts(*, now: datetime | None = None, limit: int = 10_000) -> int:
    """Fail every InProgress attempt whose window has passed; return how many attempts closed.

    Walks the due attempts once in primary-key order, so it ends even if a row cannot be
    closed; each record is locked and re-checked on its own (no long transaction).
    """
    now = now or timezone.now()
    closed = 0
    last_pk = 0
    while closed < limit:
        batch = list(
            Attempt.objects.filter(state=State.IN_PROGRESS, deadline_at__lte=now, pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "code_id", "shared_id")[:500]
        )
        if not batch:
            break
        owners = {(code_id or shared_id, shared_id is not None) for _, code_id, shared_id in batch}
        last_pk = batch[-1][0]
        for owner_id, shared in owners:
            closed += _expire(owner_id=owner_id, shared=shared, now=now)[1]
    return closed
