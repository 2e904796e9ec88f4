"""Record what a fulfilment webhook (or the client's backend, for async types) replied."""

from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from redemption import exceptions as exc
from redemption import fulfillment, rules
from redemption.actors import Actor
from redemption.db import claims
from redemption.models import Attempt, Code, Move, SharedRedemption, State
from redemption.services._common import (
    Record,
    attempt_owner,
    audit,
    record_for_update,
    record_scan_code,
)
from redemption.services.timeouts import expire_if_due
from redemption.transitions import guard


def apply_reply(
    *, actor: Actor, owner_id: UUID, shared: bool, attempt_no: int, reply: fulfillment.Reply
) -> Record:
    """Record a webhook or async reply for one attempt, if that attempt is still in progress."""
    record, _, _ = record_reply(
        actor=actor, owner_id=owner_id, shared=shared, attempt_no=attempt_no, reply=reply
    )
    if record is None:
        raise exc.CodeByIdNotFoundError()
    return record


def record_reply(
    *,
    actor: Actor,
    owner_id: UUID,
    shared: bool,
    attempt_no: int,
    reply: fulfillment.Reply,
    attempt_pk: int | None = None,
) -> tuple[Record | None, Attempt | None, bool]:
    """Apply `reply` under the owner's row lock; return (record, attempt row, applied).

    A reply for an attempt that is no longer the one in progress (finished, timed out, reset)
    changes no state. If that attempt timed out, the late reply is stored on its row (and
    audited) so support can see what the receiver said after the window closed.
    `attempt_pk` pins the exact attempt row: after a staff reset attempt numbers start again
    at 1, and a webhook reply from before the reset must not finish a newer attempt 1.
    """
    now = timezone.now()
    with transaction.atomic():
        owner = record_for_update(owner_id, shared)
        if owner is None:
            return None, None, False
        row = Attempt.objects.filter(**attempt_owner(owner_id, shared), attempt=attempt_no).first()
        if row is not None and attempt_pk is not None and row.pk != attempt_pk:
            row = None  # the attempt this reply answers was deleted (reset)
        live = (
            row is not None
            and row.state == State.IN_PROGRESS
            and owner.state == State.IN_PROGRESS
            and owner.current_attempt == attempt_no
        )
        if not live:
            late = row is not None and row.error_code == exc.AsyncTimeoutError.code
            if late and reply.raw is not None:
                assert row is not None
                row.response = reply.raw
                row.save(update_fields=["response"])
                audit(
                    actor=actor,
                    action="attempt.late_reply",
                    code_type_name=owner.code_type.name,
                    target_id=str(owner.pk),
                    scan_code=record_scan_code(owner),
                    profile_id=row.profile_id,
                    details={"attempt": attempt_no, "success": reply.success},
                    at=now,
                )
            return owner, row, False
        assert row is not None
        ct = owner.code_type
        if reply.success and reply.complete:
            new_state = State.REDEEMED
        elif reply.success and ct.fulfillment_async:
            new_state = State.IN_PROGRESS
        else:
            new_state = State.FAILED
        row.response = reply.raw
        row_fields = ["response"]
        if new_state == State.FAILED:
            if reply.is_transport_failure:
                row.error_code, row.error_msg = exc.ScriptFailureError.code, reply.transport_error
            elif reply.success:  # success without complete on a synchronous type
                row.error_code = exc.ScriptFailureError.code
                row.error_msg = "a synchronous webhook must reply complete:true"
            else:
                row.error_code = exc.RedemptionFailedError.code
                row.error_msg = reply.error_msg or reply.error_code
            row_fields += ["error_code", "error_msg"]
        if new_state != State.IN_PROGRESS:
            row.state = new_state
            row.finished_at = now
            row_fields += ["state", "finished_at"]
        row.save(update_fields=row_fields)
        owner_fields = ["state", "version", "updated_at"]
        if reply.custom_redemption_info is not None:
            owner.custom_redemption_info = reply.custom_redemption_info
            owner_fields.append("custom_redemption_info")
        if new_state != owner.state:
            move = Move.SUCCEED if new_state == State.REDEEMED else Move.FAIL
            guard(owner.state, new_state, shared=shared, move=move)
        owner.state = new_state
        owner.version += 1
        owner.updated_at = now
        if new_state == State.REDEEMED:
            owner.redeemed_at = now
            owner_fields.append("redeemed_at")
        owner.save(update_fields=owner_fields)
        if new_state == State.FAILED and shared:
            claims.code_type_give_slot_back(code_type_id=ct.pk)
        audit(
            actor=actor,
            action=f"{'shared' if shared else 'code'}.fulfilment",
            code_type_name=ct.name,
            target_id=str(owner.pk),
            scan_code=record_scan_code(owner),
            profile_id=row.profile_id,
            details={"attempt": attempt_no, "state": new_state, "errorCode": row.error_code},
            at=now,
        )
    return owner, row, True


def _find_redemption(redemption_id: str | UUID) -> tuple[Record, bool]:
    try:
        rid = UUID(str(redemption_id))
    except ValueError:
        raise exc.CodeByIdNotFoundError() from None
    code = Code.objects.select_related("code_type").filter(pk=rid, is_shared_anchor=False).first()
    if code is not None:
        return code, False
    sr = SharedRedemption.objects.select_related("code_type").filter(pk=rid).first()
    if sr is not None:
        return sr, True
    raise exc.CodeByIdNotFoundError()


def process_async_response(
    *, actor: Actor, redemption_id: str | UUID, attempt: int, async_response: dict[str, Any]
) -> Record:
    """Finish (or advance) an async attempt reported by the client app's backend."""
    owner, shared = _find_redemption(redemption_id)
    ct = owner.code_type
    if not ct.has_fulfillment or not ct.fulfillment_async:
        raise exc.TypeNotAsyncError()
    if not rules.is_whole_number(attempt):
        raise exc.invalid_fields({"attempt": "must be a whole number"})
    try:
        reply = fulfillment.parse_reply(async_response)
    except ValueError as err:
        raise exc.AsyncBadResponseError(str(err)) from None
    if owner.state == State.IN_PROGRESS:
        expire_if_due(
            code=None if shared else owner,  # type: ignore[arg-type]
            shared=owner if shared else None,  # type: ignore[arg-type]
        )
    record, row, applied = record_reply(
        actor=actor, owner_id=owner.pk, shared=shared, attempt_no=attempt, reply=reply
    )
    if record is None:
        raise exc.CodeByIdNotFoundError()
    if applied:
        return record
    if (
        row is not None
        and attempt == record.current_attempt
        and row.state == State.FAILED
        and row.error_code == exc.AsyncTimeoutError.code
    ):
        raise exc.AsyncTimeoutError(details={"attempt": attempt, "codeState": record.state})
    if record.state != State.IN_PROGRESS:
        raise exc.NotInProgressError(details={"codeState": record.state})
    raise exc.AttemptMismatchError(details={"currentAttempt": record.current_attempt})
