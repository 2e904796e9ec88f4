"""Redeem a code exactly once, with optional webhook fulfilment, retries and timeouts."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from redemption import codes, fulfillment, locks, ratelimit
from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.models import Attempt, Batch, Code, CodeType, SharedRedemption, State
from redemption.services._common import audit, check_json_object

# Outcomes that name the code and so count towards the failed-redeem limit (SPEC §8).
COUNTED_FAILURES: tuple[type[exc.RedemptionError], ...] = (
    exc.CodeNotFound,
    exc.InvalidScanCode,
    exc.CodeTypeNotFound,
    exc.CodeTypeMismatch,
    exc.CodeTypeDisabled,
    exc.NotYetValid,
    exc.Expired,
    exc.MaxRedemptionsReached,
    exc.CodeNotActive,
    exc.CodeInvalid,
    exc.CodeRedeemed,
    exc.RedeemedByOther,
    exc.RedemptionInProgress,
    exc.RedemptionFailedMaxRetries,
    exc.AttemptedByMismatch,
)

Record = Code | SharedRedemption


@dataclass(frozen=True)
class RedeemResult:
    """The record after a redeem, and whether it finished (200) or is still in progress (202)."""

    record: Record

    @property
    def in_progress(self) -> bool:
        return self.record.state == State.IN_PROGRESS


def _by_self(record: Record) -> exc.RedemptionError:
    err = exc.RedeemedBySelf()
    err.record = record  # type: ignore[attr-defined]
    return err


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
        raise exc.InvalidScanCode(details={"fields": {"scanCode": "4-64 letters and digits"}})
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
    code = Code.objects.select_related("code_type").filter(canonical=canon).first()
    if code is None:
        if _check_character_fails(canon):
            raise exc.InvalidScanCode("The scan code has a typing mistake (check character).")
        raise exc.CodeNotFound()
    ct = code.code_type
    if code_type_name is not None and ct.name != code_type_name:
        if not CodeType.objects.filter(name=code_type_name).exists():
            raise exc.CodeTypeNotFound(details={"codeType": code_type_name})
        raise exc.CodeTypeMismatch()
    if ct.is_disabled:
        raise exc.CodeTypeDisabled()
    now = timezone.now()
    if ct.valid_start and now < ct.valid_start:
        raise exc.NotYetValid()
    if ct.valid_end and now >= ct.valid_end:
        raise exc.Expired()
    if code.is_shared_anchor:
        return _redeem_shared(actor=actor, ct=ct, profile=profile, info=info)
    return _redeem_personal(actor=actor, code=code, profile=profile, info=info)


def _check_character_fails(canon: str) -> bool:
    """True when the code looks like one of a check-character batch but its check is wrong."""
    shapes = {
        codes.CodeShape(algorithm=a, length=n, prefix=p, include_check=True)
        for a, n, p in Batch.objects.filter(include_check=True)
        .values_list("algorithm", "length", "prefix")
        .distinct()
    }
    return any(shape.check_fails(canon) for shape in shapes)


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
                with transaction.atomic():
                    won = locks.code_claim_for_redeem(
                        code_id=code.pk, profile=profile, now=now, info=info
                    )
                    if won:
                        audit(
                            actor=actor,
                            action="code.redeem",
                            code_type_name=ct.name,
                            target_id=str(code.pk),
                            scan_code=code.scan_code,
                            profile_id=profile.id,
                            at=now,
                        )
                code.refresh_from_db()
                if won:
                    return RedeemResult(code)
                continue
            attempt = _start_personal_attempt(actor, code, profile, info)
            if attempt is not None:
                return _fulfil(actor=actor, ct=ct, owner=code, attempt=attempt, profile=profile)
            code.refresh_from_db()
            continue
        if code.state == State.FAILED and ct.has_fulfillment:
            if code.redeemed_by_profile_id != profile.id:
                raise exc.AttemptedByMismatch()
            if code.current_attempt > ct.fulfillment_max_retries:
                raise exc.RedemptionFailedMaxRetries()
            attempt = _start_personal_attempt(actor, code, profile, info or None)
            if attempt is not None:
                return _fulfil(actor=actor, ct=ct, owner=code, attempt=attempt, profile=profile)
            code.refresh_from_db()
            continue
        break
    raise _personal_state_error(code, profile)


def _personal_state_error(code: Code, profile: Profile) -> exc.RedemptionError:
    if code.state == State.REDEEMED:
        if code.redeemed_by_profile_id == profile.id:
            return _by_self(code)
        return exc.RedeemedByOther()
    return {
        State.INACTIVE: exc.CodeNotActive,
        State.INVALIDATED: exc.CodeInvalid,
        State.IN_PROGRESS: exc.RedemptionInProgress,
        State.FAILED: exc.RedemptionFailed,
        State.AVAILABLE: exc.RedemptionInProgress,
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
            deadline_at=now + timedelta(seconds=ct.fulfillment_timeout_seconds),
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
                raise exc.MaxRedemptionsReached()
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
                    deadline_at=now + timedelta(seconds=ct.fulfillment_timeout_seconds),
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
        raise _by_self(sr)
    if sr.state == State.IN_PROGRESS:
        raise exc.RedemptionInProgress()
    if sr.current_attempt > ct.fulfillment_max_retries or not ct.has_fulfillment:
        raise exc.RedemptionFailedMaxRetries()
    now = timezone.now()
    with transaction.atomic():
        if not locks.code_type_take_slot(code_type_id=ct.pk, now=now):
            raise exc.MaxRedemptionsReached()
        if not locks.shared_claim_retry(
            shared_id=sr.pk, expected_attempt=sr.current_attempt, now=now
        ):
            transaction.set_rollback(True)
            raise exc.RedemptionInProgress()
        if info:
            SharedRedemption.objects.filter(pk=sr.pk).update(custom_redemption_info=info)
        attempt = Attempt.objects.create(
            shared=sr,
            attempt=sr.current_attempt + 1,
            profile_id=profile.id,
            profile_name=profile.name,
            started_at=now,
            deadline_at=now + timedelta(seconds=ct.fulfillment_timeout_seconds),
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
    record = apply_reply(
        actor=actor,
        owner_id=owner.pk,
        shared=isinstance(owner, SharedRedemption),
        attempt_no=attempt.attempt,
        reply=reply,
    )
    if record.state == State.FAILED and record.current_attempt == attempt.attempt:
        if reply.is_transport_failure or (reply.success and not reply.complete):
            raise exc.ScriptFailure(details={"reason": reply.transport_error or "incomplete"})
        raise exc.RedemptionFailed(
            details={"errorCode": reply.error_code, "errorMsg": reply.error_msg}
        )
    return RedeemResult(record)


def _lock_owner(owner_id: UUID, shared: bool) -> Record | None:
    if shared:
        return locks.shared_for_update(shared_id=owner_id)
    return locks.code_for_update(code_id=owner_id)


def apply_reply(
    *, actor: Actor, owner_id: UUID, shared: bool, attempt_no: int, reply: fulfillment.Reply
) -> Record:
    """Record a webhook or async reply for one attempt, if that attempt is still in progress."""
    now = timezone.now()
    with transaction.atomic():
        owner = _lock_owner(owner_id, shared)
        if owner is None:
            raise exc.CodeByIdNotFound()
        if owner.state != State.IN_PROGRESS or owner.current_attempt != attempt_no:
            return owner  # reset, timed out or finished meanwhile: this reply is stale
        ct = owner.code_type
        attempt = Attempt.objects.get(
            **({"shared": owner} if shared else {"code": owner}), attempt=attempt_no
        )
        if reply.success and reply.complete:
            new_state = State.REDEEMED
        elif reply.success and ct.fulfillment_async:
            new_state = State.IN_PROGRESS
        else:
            new_state = State.FAILED
        attempt.response = reply.raw
        if reply.custom_redemption_info is not None:
            owner.custom_redemption_info = reply.custom_redemption_info
        if new_state == State.FAILED:
            attempt.error_code = (
                exc.ScriptFailure.code
                if reply.is_transport_failure
                else (reply.error_code or exc.RedemptionFailed.code)
            )
            if reply.success and not reply.complete:
                attempt.error_code = exc.ScriptFailure.code
                attempt.error_msg = "a synchronous webhook must reply complete:true"
            else:
                attempt.error_msg = reply.transport_error or reply.error_msg
        if new_state != State.IN_PROGRESS:
            attempt.state = new_state
            attempt.finished_at = now
        attempt.save()
        owner.state = new_state
        owner.version += 1
        owner.updated_at = now
        if new_state == State.REDEEMED:
            owner.redeemed_at = now
        owner.save()
        if new_state == State.FAILED and shared:
            locks.code_type_give_slot_back(code_type_id=ct.pk)
        audit(
            actor=actor,
            action=f"{'shared' if shared else 'code'}.fulfilment",
            code_type_name=ct.name,
            target_id=str(owner.pk),
            scan_code=(ct.scan_code or "") if shared else owner.scan_code,  # type: ignore[union-attr]
            profile_id=attempt.profile_id,
            details={"attempt": attempt_no, "state": new_state, "errorCode": attempt.error_code},
            at=now,
        )
    return owner


def expire_if_due(
    *, code: Code | None = None, shared: SharedRedemption | None = None, now: datetime | None = None
) -> bool:
    """Fail an InProgress record whose attempt window has passed; update the object passed in."""
    owner: Record = code if code is not None else shared  # type: ignore[assignment]
    now = now or timezone.now()
    is_shared = shared is not None
    with transaction.atomic():
        locked = _lock_owner(owner.pk, is_shared)
        if locked is None or locked.state != State.IN_PROGRESS:
            _copy_state(owner, locked)
            return False
        attempt = Attempt.objects.filter(
            **({"shared_id": owner.pk} if is_shared else {"code_id": owner.pk}),
            attempt=locked.current_attempt,
        ).first()
        if attempt is None or attempt.deadline_at > now:
            _copy_state(owner, locked)
            return False
        attempt.state = State.FAILED
        attempt.finished_at = now
        attempt.error_code = exc.AsyncTimeout.code
        attempt.error_msg = "no complete reply within timeoutSeconds"
        attempt.save(update_fields=["state", "finished_at", "error_code", "error_msg"])
        locked.state = State.FAILED
        locked.version += 1
        locked.updated_at = now
        locked.save(update_fields=["state", "version", "updated_at"])
        if is_shared:
            locks.code_type_give_slot_back(code_type_id=locked.code_type_id)
        audit(
            actor=Actor.system("timeout"),
            action="attempt.timeout",
            code_type_name=locked.code_type.name,
            target_id=str(locked.pk),
            profile_id=attempt.profile_id,
            details={"attempt": attempt.attempt},
            at=now,
        )
    _copy_state(owner, locked)
    return True


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


def process_async_response(
    *, actor: Actor, redemption_id: Any, attempt: Any, async_response: Any
) -> Record:
    """Finish (or advance) an async attempt reported by the client app's backend."""
    owner: Record | None = None
    try:
        rid = UUID(str(redemption_id))
    except ValueError:
        raise exc.CodeByIdNotFound() from None
    owner = Code.objects.select_related("code_type").filter(pk=rid).first()
    shared = False
    if owner is None:
        owner = SharedRedemption.objects.select_related("code_type").filter(pk=rid).first()
        shared = True
    if owner is None:
        raise exc.CodeByIdNotFound()
    ct = owner.code_type
    if not ct.has_fulfillment or not ct.fulfillment_async:
        raise exc.TypeNotAsync()
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise exc.invalid_fields({"attempt": "must be a whole number"})
    try:
        reply = fulfillment.parse_reply(async_response)
    except ValueError as err:
        raise exc.AsyncBadResponse(str(err)) from None
    if owner.state == State.IN_PROGRESS:
        expired = expire_if_due(
            code=None if shared else owner,  # type: ignore[arg-type]
            shared=owner if shared else None,
        )  # type: ignore[arg-type]
        if expired and owner.current_attempt == attempt:
            raise exc.AsyncTimeout()
    if owner.state != State.IN_PROGRESS:
        raise exc.NotInProgress(details={"codeState": owner.state})
    if owner.current_attempt != attempt:
        raise exc.AttemptMismatch(details={"currentAttempt": owner.current_attempt})
    record = apply_reply(
        actor=actor, owner_id=owner.pk, shared=shared, attempt_no=attempt, reply=reply
    )
    if record.current_attempt != attempt:
        raise exc.AttemptMismatch(details={"currentAttempt": record.current_attempt})
    return record


def sweep_timeouts(*, now: datetime | None = None, limit: int = 10_000) -> int:
    """Fail every InProgress attempt whose window has passed; return how many."""
    now = now or timezone.now()
    count = 0
    stale = Attempt.objects.filter(state=State.IN_PROGRESS, deadline_at__lte=now).values_list(
        "code_id", "shared_id"
    )[:limit]
    for code_id, shared_id in stale:
        if code_id:
            code = Code.objects.filter(pk=code_id).first()
            if code and expire_if_due(code=code, now=now):
                count += 1
        elif shared_id:
            sr = SharedRedemption.objects.filter(pk=shared_id).first()
            if sr and expire_if_due(shared=sr, now=now):
                count += 1
    ratelimit.prune()
    return count
