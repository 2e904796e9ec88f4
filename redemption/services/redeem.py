"""Redeem a code exactly once, with optional webhook fulfilment.

The webhook's reply is recorded by services.fulfilment_replies; attempts that run past their
window are failed by services.timeouts.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from redemption import codes, fulfillment, metrics, ratelimit, selectors
from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.db import audit as db_audit
from redemption.db import claims, lookups, redeem_at_once
from redemption.models import Attempt, Code, CodeType, Move, SharedRedemption, State, sources_of
from redemption.services._common import (
    Record,
    audit,
    audit_fields,
    check_code_type_matches,
    check_json_object,
)
from redemption.services.fulfilment_replies import record_reply
from redemption.services.keys import minting_key_check
from redemption.services.timeouts import attempt_deadline, expire_if_due
from redemption.transitions import STATE_ERRORS, redeem_refusal

logger = logging.getLogger(__name__)

# Outcomes that name the code and so count towards the failed-redeem limit.
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


_GONE_WHILE_FULFILLED = "The redemption was reset or deleted while it was being fulfilled."


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
    minting_key_id: int | None = None,
) -> RedeemResult:
    """Redeem `scan_code` for `profile`; raise the domain error that explains any refusal.

    `client_ip` (user-token calls) adds a per-IP limit; `minting_key_id` is the server key that
    minted the caller's user token, checked here in the rate-limit query rather than alone.
    """
    try:
        result = _redeem_limited(
            actor=actor,
            profile=profile,
            scan_code=scan_code,
            code_type_name=code_type_name,
            custom_redemption_info=custom_redemption_info,
            client_ip=client_ip,
            minting_key_id=minting_key_id,
        )
    except Exception as error:
        metrics.redeem_failed(error)
        raise
    metrics.redeem_succeeded(in_progress=result.in_progress)
    return result


def _redeem_limited(
    *,
    actor: Actor,
    profile: Profile,
    scan_code: str,
    code_type_name: str | None,
    custom_redemption_info: dict[str, Any] | None,
    client_ip: str | None,
    minting_key_id: int | None,
) -> RedeemResult:
    """Check the failed-redeem limits, redeem, and count a failure that names the code."""
    try:
        canon = codes.canonical_or_error(scan_code)
        info = check_json_object(custom_redemption_info, "customRedemptionInfo")
    except exc.RedemptionError:
        if minting_key_id is not None:
            minting_key_check(minting_key_id)  # a dead credential is told before bad input
        raise
    counters = ratelimit.buckets(profile_id=profile.id, client_ip=client_ip)
    if redeem_at_once.supported():
        limits = ratelimit.at_once_limits(counters, minting_key_id=minting_key_id)
        if limits is not None:
            code = redeem_at_once.redeem_at_once(
                canon=canon,
                code_type_name=code_type_name,
                profile=profile,
                info=info,
                now=timezone.now(),
                limits=limits,
                audit_row=audit_fields(actor=actor, action="code.redeem", profile_id=profile.id),
            )
            if code is not None:
                return RedeemResult(code)
    ratelimit.check(counters, minting_key_id=minting_key_id)
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
    code = lookups.code_with_type(canon)
    if code is None:
        if selectors.check_character_fails(canon):
            raise exc.InvalidScanCodeError("The scan code has a typing mistake (check character).")
        raise exc.CodeNotFoundError()
    check_code_type_matches(code, code_type_name)
    ct = code.code_type
    refusal = redeem_refusal(ct, now=timezone.now())
    if refusal is not None:
        raise refusal
    if code.is_shared_anchor:
        return _redeem_shared(actor=actor, ct=ct, profile=profile, info=info)
    return _redeem_personal(actor=actor, code=code, profile=profile, info=info)


# --- personal codes ---------------------------------------------------------------------------

# Where a personal code may be redeemed from: at once (no fulfilment), by starting its first
# attempt (fulfilment), or by retrying a failed attempt.
_REDEEMABLE = sources_of(State.REDEEMED, move=Move.REDEEM)
_ATTEMPTABLE = sources_of(State.IN_PROGRESS, move=Move.ATTEMPT)
_RETRYABLE = sources_of(State.IN_PROGRESS, move=Move.RETRY)


def _redeem_personal(
    *, actor: Actor, code: Code, profile: Profile, info: dict[str, Any]
) -> RedeemResult:
    ct = code.code_type
    for _ in range(3):
        if code.state == State.IN_PROGRESS:
            expire_if_due(code=code)
        if not ct.has_fulfillment and code.state in _REDEEMABLE:
            if _claim_personal(actor=actor, code=code, profile=profile, info=info):
                return RedeemResult(code)
            _reload(code, ct)
            continue
        if ct.has_fulfillment and code.state in _ATTEMPTABLE:
            attempt = _start_personal_attempt(actor, code, profile, info, retry=False)
            if attempt is not None:
                return _fulfil(actor=actor, ct=ct, owner=code, attempt=attempt, profile=profile)
            _reload(code, ct)
            continue
        if ct.has_fulfillment and code.state in _RETRYABLE:
            if code.redeemed_by_profile_id != profile.id:
                raise exc.AttemptedByMismatchError()
            if code.current_attempt > ct.fulfillment_max_retries:
                raise exc.RedemptionFailedMaxRetriesError()
            attempt = _start_personal_attempt(actor, code, profile, info or None, retry=True)
            if attempt is not None:
                return _fulfil(actor=actor, ct=ct, owner=code, attempt=attempt, profile=profile)
            _reload(code, ct)
            continue
        break
    raise _personal_refusal(code, profile)


def _claim_personal(*, actor: Actor, code: Code, profile: Profile, info: dict[str, Any]) -> bool:
    """Redeem a code with no fulfilment in one conditional UPDATE (with its audit row)."""
    now = timezone.now()
    claim = claims.code_claim_for_redeem(code_id=code.pk, profile=profile, now=now, info=info)
    row = audit_fields(
        actor=actor,
        action="code.redeem",
        code_type_name=code.code_type.name,
        target_id=str(code.pk),
        scan_code=code.scan_code,
        profile_id=profile.id,
    )
    if not db_audit.run_audited(claim, at=now, row=row):
        return False
    # The UPDATE wrote exactly these values; no need to read them back.
    for name, value in claim.values.items():
        setattr(code, name, value)
    code.version += 1
    return True


def _reload(code: Code, ct: CodeType) -> None:
    """Re-read a code after losing a race, keeping its already-loaded code type.

    The race may have been lost to a delete (one code, or a delete-all job): then the code is
    not found, exactly as if the redeem had come a moment later.
    """
    try:
        code.refresh_from_db()
    except Code.DoesNotExist:
        raise exc.CodeNotFoundError() from None
    code.code_type = ct


def _personal_refusal(code: Code, profile: Profile) -> exc.RedemptionError:
    """Why a personal code cannot be redeemed in its state (who redeemed it, if anyone)."""
    if code.state == State.REDEEMED:
        if code.redeemed_by_profile_id == profile.id:
            return exc.RedeemedBySelfError(code)
        return exc.RedeemedByOtherError()
    if code.state == State.AVAILABLE:
        # Still Available after every retry: other callers kept moving it first.
        return exc.RedemptionInProgressError()
    return STATE_ERRORS[code.state]()


def _start_personal_attempt(
    actor: Actor, code: Code, profile: Profile, info: dict[str, Any] | None, *, retry: bool
) -> Attempt | None:
    ct = code.code_type
    now = timezone.now()
    with transaction.atomic():
        won = claims.code_claim_for_attempt(
            code_id=code.pk,
            retry=retry,
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
    _reload(code, ct)
    return attempt


# --- shared codes -----------------------------------------------------------------------------

# Where one profile's redemption of a shared code may be redeemed again from.
_SHARED_RETRYABLE = sources_of(State.IN_PROGRESS, shared=True, move=Move.RETRY)


def _no_slot(ct: CodeType) -> exc.RedemptionError:
    """Why the slot could not be taken: the cap, or the type was deleted meanwhile."""
    if CodeType.objects.filter(pk=ct.pk).exists():
        return exc.MaxRedemptionsReachedError()
    return exc.CodeNotFoundError()


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
            if not claims.code_type_take_slot(code_type_id=ct.pk, now=now):
                raise _no_slot(ct)
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
        # The same profile won a concurrent race; report what it holds now (unless staff
        # deleted that redemption in the meantime: then this redeem may simply be tried again).
        won = SharedRedemption.objects.filter(code_type=ct, profile_id=profile.id).first()
        if won is None:
            raise exc.RedemptionInProgressError() from None
        return _redeem_shared_again(actor=actor, ct=ct, sr=won, profile=profile, info=info)
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
    if sr.state not in _SHARED_RETRYABLE:
        raise STATE_ERRORS[sr.state]()
    if sr.current_attempt > ct.fulfillment_max_retries or not ct.has_fulfillment:
        raise exc.RedemptionFailedMaxRetriesError()
    now = timezone.now()
    with transaction.atomic():
        if not claims.code_type_take_slot(code_type_id=ct.pk, now=now):
            raise _no_slot(ct)
        if not claims.shared_claim_retry(
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
    try:
        sr.refresh_from_db()
    except SharedRedemption.DoesNotExist:
        raise exc.RedemptionFailedError(_GONE_WHILE_FULFILLED) from None
    return _fulfil(actor=actor, ct=ct, owner=sr, attempt=attempt, profile=profile)


# --- fulfilment -------------------------------------------------------------------------------


def webhook_payload(*, ct: CodeType, owner: Record, attempt: Attempt) -> dict[str, Any]:
    """The JSON body sent to the fulfilment webhook."""
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
    started = time.perf_counter()
    reply = fulfillment.call(
        url=ct.fulfillment_url,
        secret=ct.webhook_secret,
        previous_secrets=ct.previous_secrets(timezone.now()),
        payload=webhook_payload(ct=ct, owner=owner, attempt=attempt),
        timeout_seconds=ct.fulfillment_timeout_seconds,
    )
    seconds = time.perf_counter() - started
    metrics.webhook_called(reply, seconds=seconds)
    logger.info(
        "webhook of %s for %s attempt %d: %s in %.0f ms",
        ct.name,
        owner.pk,
        attempt.attempt,
        metrics.webhook_result(reply),
        seconds * 1000,
    )
    record, row, _ = record_reply(
        actor=actor,
        owner_id=owner.pk,
        shared=isinstance(owner, SharedRedemption),
        attempt_no=attempt.attempt,
        reply=reply,
        attempt_pk=attempt.pk,
    )
    if record is None or row is None:
        raise exc.RedemptionFailedError(_GONE_WHILE_FULFILLED)
    if row.state == State.FAILED:
        raise _attempt_error(row, reply)
    return RedeemResult(record)


# What a redeem caller is told when the webhook could not be used. The transport detail (refused
# target, connection error, timeout, bad reply) is kept on the attempt for staff only: told to
# callers, it would map the portal's network for them.
SCRIPT_FAILURE_MESSAGE = "Fulfilment failed; the redemption did not complete."


def _attempt_error(row: Attempt, reply: fulfillment.Reply) -> exc.RedemptionError:
    """The error a redeem caller gets for its own failed attempt."""
    if row.error_code == exc.AsyncTimeoutError.code:
        return exc.AsyncTimeoutError(details={"attempt": row.attempt})
    if row.error_code == exc.ScriptFailureError.code:
        return exc.ScriptFailureError(SCRIPT_FAILURE_MESSAGE, details={"attempt": row.attempt})
    return exc.RedemptionFailedError(
        details={"attempt": row.attempt, "errorCode": reply.error_code, "errorMsg": reply.error_msg}
    )
