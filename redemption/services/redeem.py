"""Redeem a code exactly once, with optional webhook fulfilment, retries and timeouts."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from redemption import codes, fulfillment, locks, ratelimit, selectors
from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.models import Attempt, Code, CodeType, SharedRedemption, State
from redemption.services._common import audit, audit_fields, check_json_object

# Outcomes that name the code and so count towards the failed-redeem limit (SPEC §8).
COUNTED_FAILURES: tuple[type[exc.RedemptionError], ...] = (
    exc.CodeNotFoundError,
    exc.InvalidScanCodeError,
    exc.CodeTypeNotFoundError,
    exc.CodeTypeMismatchError,
    exc.CodeTypeDisabledError,
    exc.NotYetValidError,
    exc.ExpiredError,
    exc.MaxRedemptionsReachedError,
    exc.CodeNotActiveError,
    exc.CodeInvalidatedError,
    exc.CodeRedeemedError,
    exc.RedeemedByOtherError,
    exc.RedemptionInProgressError,
    exc.RedemptionFailedMaxRetriesError,
    exc.AttemptedByMismatchError,
)

Record = Code | SharedRedemption


@dataclass(frozen=True)
class RedeemResult:
    """The record after a redeem, and whether it finished (200) or is still in progress (202)."""

    record: Record

    @property
    def in_progress(self) -> bool:
        return self.record.state == State.IN_PROGRESS


def redeem(
    *,
    actor: Actor,
    profile: Profile,
    scan_code: str,
    code_type_name: str | None = None,
    custom_redemption_info: dict[str, Any] | None = None,
    client_ip: str | None = None,
) -> RedeemResult:
    """Redeem `scan_code` for `profile`; raise the domain error that explains any refusal."""
    if not isinstance(scan_code, str):
        raise exc.invalid_fields({"scanCode": "must be a string"})
    canon = codes.canonical(scan_code)
    if not codes.is_valid_canonical(canon):
        raise exc.InvalidScanCodeError(details={"fields": {"scanCode": "4-64 letters and digits"}})
    info = check_json_object(custom_redemption_info, "customRedemptionInfo")
    counters = ratelimit.buckets(profile_id=profile.id, client_ip=client_ip)
    ratelimit.check(counters)
    try:
        return _redeem(
            actor=actor, profile=profile, canon=canon, code_type_name=code_type_name, info=info
        )
    except COUNTED_FAILURES:
        ratelimit.record_failure(counters)
        raise


def _redeem(
    *, actor: Actor, profile: Profile, canon: str, code_type_name: str | None, info: dict[str, Any]
) -> RedeemResult:
    code = selectors.code_with_type(canon)
    if code is None:
        if selectors.check_character_fails(canon):
            raise exc.InvalidScanCodeError("The scan code has a typing mistake (check character).")
        raise exc.CodeNotFoundError()
    ct = code.code_type
    if code_type_name is not None and ct.name != code_type_name:
        if not CodeType.objects.filter(name=code_type_name).exists():
            raise exc.CodeTypeNotFoundError(details={"codeType": code_type_name})
        raise exc.CodeTypeMismatchError()
    if ct.is_disabled:
        raise exc.CodeTypeDisabledError()
    now = timezone.now()
    if ct.valid_start and now < ct.valid_start:
        raise exc.NotYetValidError()
    if ct.valid_end and now >= ct.valid_end:
        raise exc.ExpiredError()
    if code.is_shared_anchor:
        return _redeem_shared(actor=actor, ct=ct, profile=profile, info=info)
    return _redeem_personal(actor=actor, code=code, profile=profile, info=info)


# --- personal codes ---------------------------------------------------------------------------


def _redeem_personal(
    *, actor: Actor, code: Code, profile: Profile, info: dict[str, Any]
) -> RedeemResult:
    ct = code.code_type
    for _ in range(3):
        if code.state == State.IN_PROGRESS:
            expire_if_due(code=code)
        if code.state == State.AVAILABLE:
            if not ct.has_fulfillment:
                now = timezone.now()
                won = locks.code_claim_for_redeem(
                    code_id=code.pk,
                    profile=profile,
                    now=now,
                    info=info,
                    audit_row=audit_fields(
                        actor=actor,
                        action="code.redeem",
                        code_type_name=ct.name,
                        target_id=str(code.pk),
                        scan_code=code.scan_code,
                        profile_id=profile.id,
                    ),
                )
                if won:
                    # The conditional UPDATE wrote exactly these values; no need to read them back.
                    code.state = State.REDEEMED
                    code.redeemed_by_profile_id = profile.id
                    code.redeemed_by_profile_name = profile.name
                    code.redeemed_at = now
                    code.custom_redemption_info = info
                    code.version += 1
                    code.updated_at = now
                    return RedeemResult(code)
                _reload(code, ct)
                continue
            attempt = _start_personal_attempt(actor, code, profile, info)
            if attempt is not None:
                return _fulfil(actor=actor, ct=ct, owner=code, attempt=attempt, profile=profile)
            _reload(code, ct)
            continue
        if code.state == State.FAILED and ct.has_fulfillment:
            if code.redeemed_by_profile_id != profile.id:
                raise exc.AttemptedByMismatchError()
            if code.current_attempt > ct.fulfillment_max_retries:
                raise exc.RedemptionFailedMaxRetriesError()
            attempt = _start_personal_attempt(actor, code, profile, info or None)
            if attempt is not None:
                return _fulfil(actor=actor, ct=ct, owner=code, attempt=attempt, profile=profile)
            _reload(code, ct)
            continue
        break
    raise _personal_state_error(code, profile)


def _reload(code: Code, ct: CodeType) -> None:
    """Re-read a code after losing a race, keeping its already-loaded code type."""
    code.refresh_from_db()
    code.code_type = ct


def _personal_state_error(code: Code, profile: Profile) -> exc.RedemptionError:
    if code.state == State.REDEEMED:
        if code.redeemed_by_profile_id == profile.id:
            return exc.RedeemedBySelfError(code)
        return exc.RedeemedByOtherError()
    return {
        State.INACTIVE: exc.CodeNotActiveError,
        State.INVALIDATED: exc.CodeInvalidatedError,
        State.IN_PROGRESS: exc.RedemptionInProgressError,
        State.FAILED: exc.RedemptionFailedError,
        State.AVAILABLE: exc.RedemptionInProgressError,
    }[State(code.state)]()


def _start_personal_attempt(
    actor: Actor, code: Code, profile: Profile, info: dict[str, Any] | None
) -> Attempt | None:
    ct = code.code_type
    now = timezone.now()
    with transaction.atomic():
        won = locks.code_claim_for_attempt(
            code_id=code.pk,
            from_state=code.state,
            expected_attempt=code.current_attempt,
            profile=profile,
            now=now,
            info=info,
        )
        if not won:
            return None
        attempt = Attempt.objects.create(
            code=code,
            attempt=code.current_attempt + 1,
            profile_id=profile.id,
            profile_name=profile.name,
            started_at=now,
            deadline_at=attempt_deadline(ct, now),
        )
        audit(
            actor=actor,
            action="code.redeem_attempt",
            code_type_name=ct.name,
            target_id=str(code.pk),
            scan_code=code.scan_code,
            profile_id=profile.id,
            details={"attempt": attempt.attempt},
            at=now,
        )
    code.refresh_from_db()
    return attempt


# --- shared codes -----------------------------------------------------------------------------


def _redeem_shared(
    *, actor: Actor, ct: CodeType, profile: Profile, info: dict[str, Any]
) -> RedeemResult:
    existing = SharedRedemption.objects.filter(code_type=ct, profile_id=profile.id).first()
    if existing is not None:
        return _redeem_shared_again(actor=actor, ct=ct, sr=existing, profile=profile, info=info)
    now = timezone.now()
    fulfil = ct.has_fulfillment
    try:
        with transaction.atomic():
            if not locks.code_type_take_slot(code_type_id=ct.pk, now=now):
                raise exc.MaxRedemptionsReachedError()
            sr = SharedRedemption.objects.create(
                code_type=ct,
                profile_id=profile.id,
                profile_name=profile.name,
                state=State.IN_PROGRESS if fulfil else State.REDEEMED,
                custom_code_info=ct.custom_code_info,
                custom_redemption_info=info,
                current_attempt=1 if fulfil else 0,
                created_at=now,
                redeemed_at=None if fulfil else now,
                updated_at=now,
            )
            attempt = None
            if fulfil:
                attempt = Attempt.objects.create(
                    shared=sr,
                    attempt=1,
                    profile_id=profile.id,
                    profile_name=profile.name,
                    started_at=now,
                    deadline_at=attempt_deadline(ct, now),
                )
            audit(
                actor=actor,
                action="shared.redeem_attempt" if fulfil else "shared.redeem",
                code_type_name=ct.name,
                target_id=str(sr.pk),
                scan_code=ct.scan_code or "",
                profile_id=profile.id,
                at=now,
            )
    except IntegrityError:
        # The same profile won a concurrent race; report what it holds now.
        sr = SharedRedemption.objects.get(code_type=ct, profile_id=profile.id)
        return _redeem_shared_again(actor=actor, ct=ct, sr=sr, profile=profile, info=info)
    if attempt is None:
        return RedeemResult(sr)
    return _fulfil(actor=actor, ct=ct, owner=sr, attempt=attempt, profile=profile)


def _redeem_shared_again(
    *, actor: Actor, ct: CodeType, sr: SharedRedemption, profile: Profile, info: dict[str, Any]
) -> RedeemResult:
    if sr.state == State.IN_PROGRESS:
        expire_if_due(shared=sr)
    if sr.state == State.REDEEMED:
        raise exc.RedeemedBySelfError(sr)
    if sr.state == State.IN_PROGRESS:
        raise exc.RedemptionInProgressError()
    if sr.current_attempt > ct.fulfillment_max_retries or not ct.has_fulfillment:
        raise exc.RedemptionFailedMaxRetriesError()
    now = timezone.now()
    with transaction.atomic():
        if not locks.code_type_take_slot(code_type_id=ct.pk, now=now):
            raise exc.MaxRedemptionsReachedError()
        if not locks.shared_claim_retry(
            shared_id=sr.pk, expected_attempt=sr.current_attempt, now=now
        ):
            transaction.set_rollback(True)
            raise exc.RedemptionInProgressError()
        if info:
            SharedRedemption.objects.filter(pk=sr.pk).update(custom_redemption_info=info)
        attempt = Attempt.objects.create(
            shared=sr,
            attempt=sr.current_attempt + 1,
            profile_id=profile.id,
            profile_name=profile.name,
            started_at=now,
            deadline_at=attempt_deadline(ct, now),
        )
        audit(
            actor=actor,
            action="shared.redeem_attempt",
            code_type_name=ct.name,
            target_id=str(sr.pk),
            scan_code=ct.scan_code or "",
            profile_id=profile.id,
            details={"attempt": attempt.attempt},
            at=now,
        )
    sr.refresh_from_db()
    return _fulfil(actor=actor, ct=ct, owner=sr, attempt=attempt, profile=profile)


# --- fulfilment -------------------------------------------------------------------------------

# A synchronous attempt is finished by the request that made the call, within
# call_seconds(timeoutSeconds). Its window adds this grace so that a timeout sweep can only
# ever close attempts whose caller died, never race a reply that is being recorded.
SYNC_GRACE_SECONDS = 5
# The reason a timed-out attempt failed, and the one an abandoned attempt row is closed with.
TIMEOUT_MSG = "no complete reply within timeoutSeconds"
ABANDONED_MSG = "closed: the record was no longer waiting for this attempt"


def attempt_deadline(ct: CodeType, started_at: datetime) -> datetime:
    """When an attempt started at `started_at` times out (SPEC §6.4, §6.5)."""
    if ct.fulfillment_async:
        return started_at + timedelta(seconds=ct.fulfillment_timeout_seconds)
    seconds = fulfillment.call_seconds(ct.fulfillment_timeout_seconds) + SYNC_GRACE_SECONDS
    return started_at + timedelta(seconds=seconds)


def webhook_payload(*, ct: CodeType, owner: Record, attempt: Attempt) -> dict[str, Any]:
    """The JSON body sent to the fulfilment webhook (SPEC §6.2)."""
    scan = owner.scan_code if isinstance(owner, Code) else (ct.scan_code or "")
    return {
        "operation": "redeem",
        "scanCode": scan,
        "redemptionCodeId": str(owner.pk),
        "attempt": attempt.attempt,
        "codeType": ct.name,
        "codeUseType": ct.use_type,
        "async": ct.fulfillment_async,
        "customCodeInfo": owner.custom_code_info,
        "customRedemptionInfo": owner.custom_redemption_info,
        "profileId": attempt.profile_id,
        "profileName": attempt.profile_name,
    }


def _fulfil(
    *, actor: Actor, ct: CodeType, owner: Record, attempt: Attempt, profile: Profile
) -> RedeemResult:
    """Call the webhook with no transaction open, then record what it said."""
    reply = fulfillment.call(
        url=ct.fulfillment_url,
        secret=ct.webhook_secret,
        payload=webhook_payload(ct=ct, owner=owner, attempt=attempt),
        timeout_seconds=ct.fulfillment_timeout_seconds,
    )
    record, row, _ = _record_reply(
        actor=actor,
        owner_id=owner.pk,
        shared=isinstance(owner, SharedRedemption),
        attempt_no=attempt.attempt,
        reply=reply,
        attempt_pk=attempt.pk,
    )
    if record is None or row is None:
        raise exc.RedemptionFailedError(
            "The redemption was reset or deleted while it was being fulfilled."
        )
    if row.state == State.FAILED:
        raise _attempt_error(row, reply)
    return RedeemResult(record)


def _attempt_error(row: Attempt, reply: fulfillment.Reply) -> exc.RedemptionError:
    """The error a redeem caller gets for its own failed attempt."""
    if row.error_code == exc.AsyncTimeoutError.code:
        return exc.AsyncTimeoutError(details={"attempt": row.attempt})
    if row.error_code == exc.ScriptFailureError.code:
        return exc.ScriptFailureError(details={"attempt": row.attempt, "reason": row.error_msg})
    return exc.RedemptionFailedError(
        details={"attempt": row.attempt, "errorCode": reply.error_code, "errorMsg": reply.error_msg}
    )


def _owner_filter(owner_id: UUID, shared: bool) -> dict[str, UUID]:
    return {"shared_id": owner_id} if shared else {"code_id": owner_id}


def _lock_owner(owner_id: UUID, shared: bool) -> Record | None:
    if shared:
        return locks.shared_for_update(shared_id=owner_id)
    return locks.code_for_update(code_id=owner_id)


def _scan_code(owner: Record) -> str:
    if isinstance(owner, SharedRedemption):
        return owner.code_type.scan_code or ""
    return owner.scan_code


def apply_reply(
    *, actor: Actor, owner_id: UUID, shared: bool, attempt_no: int, reply: fulfillment.Reply
) -> Record:
    """Record a webhook or async reply for one attempt, if that attempt is still in progress."""
    record, _, _ = _record_reply(
        actor=actor, owner_id=owner_id, shared=shared, attempt_no=attempt_no, reply=reply
    )
    if record is None:
        raise exc.CodeByIdNotFoundError()
    return record


def _record_reply(
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
        owner = _lock_owner(owner_id, shared)
        if owner is None:
            return None, None, False
        row = Attempt.objects.filter(**_owner_filter(owner_id, shared), attempt=attempt_no).first()
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
                    scan_code=_scan_code(owner),
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
        owner.state = new_state
        owner.version += 1
        owner.updated_at = now
        if new_state == State.REDEEMED:
            owner.redeemed_at = now
            owner_fields.append("redeemed_at")
        owner.save(update_fields=owner_fields)
        if new_state == State.FAILED and shared:
            locks.code_type_give_slot_back(code_type_id=ct.pk)
        audit(
            actor=actor,
            action=f"{'shared' if shared else 'code'}.fulfilment",
            code_type_name=ct.name,
            target_id=str(owner.pk),
            scan_code=_scan_code(owner),
            profile_id=row.profile_id,
            details={"attempt": attempt_no, "state": new_state, "errorCode": row.error_code},
            at=now,
        )
    return owner, row, True


def expire_if_due(
    *, code: Code | None = None, shared: SharedRedemption | None = None, now: datetime | None = None
) -> bool:
    """Fail an InProgress record whose attempt window has passed; update the object passed in."""
    owner: Record = code if code is not None else shared  # type: ignore[assignment]
    is_shared = shared is not None
    now = now or timezone.now()
    # Cheap unlocked look first: most touches find nothing due and need no write transaction.
    if not Attempt.objects.filter(
        **_owner_filter(owner.pk, is_shared), state=State.IN_PROGRESS, deadline_at__lte=now
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
        locked = _lock_owner(owner_id, shared)
        if locked is None:
            return False, 0, None
        rows = Attempt.objects.filter(**_owner_filter(owner_id, shared), state=State.IN_PROGRESS)
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
        locked.state = State.FAILED
        locked.version += 1
        locked.updated_at = stamp
        locked.save(update_fields=["state", "version", "updated_at"])
        if shared:
            locks.code_type_give_slot_back(code_type_id=locked.code_type_id)
        audit(
            actor=Actor.system("timeout"),
            action="attempt.timeout",
            code_type_name=locked.code_type.name,
            target_id=str(locked.pk),
            scan_code=_scan_code(locked),
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


def _find_redemption(redemption_id: Any) -> tuple[Record, bool]:
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
    *, actor: Actor, redemption_id: Any, attempt: Any, async_response: Any
) -> Record:
    """Finish (or advance) an async attempt reported by the client app's backend."""
    owner, shared = _find_redemption(redemption_id)
    ct = owner.code_type
    if not ct.has_fulfillment or not ct.fulfillment_async:
        raise exc.TypeNotAsyncError()
    if isinstance(attempt, bool) or not isinstance(attempt, int):
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
    record, row, applied = _record_reply(
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
    ratelimit.prune()
    return closed
