"""Single-code operations: add, activate, invalidate, edit custom info, reset."""

from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from redemption import codes, rules, selectors
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.db import claims
from redemption.models import Batch, Code, CodeType, Move, State
from redemption.services._common import (
    audit,
    check_code_type_matches,
    check_initial_state,
    check_json_object,
    check_type_in_use,
    require_ops,
    require_support,
)
from redemption.transitions import guard


def code_add(
    *,
    actor: Actor,
    code_type_name: str,
    scan_code: str,
    state: str | None = None,
    custom_code_info: dict[str, Any] | None = None,
) -> Code:
    """Add one personal code (Inactive unless asked otherwise)."""
    require_ops(actor)
    canon = codes.canonical_or_error(scan_code)
    state = check_initial_state(state)
    info = check_json_object(custom_code_info, "customCodeInfo")
    ct = selectors.code_type_get(code_type_name)
    if ct.is_shared:
        raise exc.TypeMustBeSingleUseError()
    check_type_in_use(ct)
    now = timezone.now()
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                code_type=ct,
                kind=Batch.Kind.ADD,
                quantity=1,
                created_by=actor.label[:200],
                created_at=now,
            )
            code = Code.objects.create(
                code_type=ct,
                scan_code=codes.display(scan_code),
                canonical=canon,
                state=state,
                custom_code_info=info,
                batch=batch,
                created_at=now,
                activated_at=now if state == State.AVAILABLE else None,
                updated_at=now,
            )
            audit(
                actor=actor,
                action="code.add",
                code_type_name=ct.name,
                target_id=str(code.pk),
                scan_code=code.scan_code,
                details={"state": state},
                at=now,
            )
    except IntegrityError:
        if not CodeType.objects.filter(pk=ct.pk).exists():  # deleted meanwhile
            raise exc.CodeTypeNotFoundError(details={"codeType": code_type_name}) from None
        raise exc.CodeDuplicateError(details={"scanCode": codes.display(scan_code)}) from None
    return code


def code_activate(
    *,
    actor: Actor,
    scan_code: str,
    code_type_name: str | None = None,
    custom_code_info: dict[str, Any] | None = None,
) -> Code:
    """Make an Inactive code Available (a retail card has been sold).

    `custom_code_info` None keeps the code's custom info; any object, `{}` included, replaces it.
    """
    require_support(actor)
    info = None
    if custom_code_info is not None:
        info = check_json_object(custom_code_info, "customCodeInfo")
    with transaction.atomic():
        code = selectors.code_lookup(scan_code, for_update=True)
        check_code_type_matches(code, code_type_name)
        check_type_in_use(code.code_type)
        guard(code.state, State.AVAILABLE, move=Move.ACTIVATE)
        now = timezone.now()
        code.state = State.AVAILABLE
        code.activated_at = now
        code.updated_at = now
        code.version += 1
        fields = ["state", "activated_at", "updated_at", "version"]
        details: dict[str, Any] = {}
        if info is not None:
            details["customCodeInfoReplaced"] = True
            code.custom_code_info = info
            fields.append("custom_code_info")
        code.save(update_fields=fields)
        audit(
            actor=actor,
            action="code.activate",
            code_type_name=code.code_type.name,
            target_id=str(code.pk),
            scan_code=code.scan_code,
            details=details,
            at=now,
        )
    return code


def code_invalidate(
    *,
    actor: Actor,
    scan_code: str,
    code_type_name: str | None = None,
    reason: str | None = None,
) -> Code:
    """Invalidate a code that is lost, stolen or fraudulent."""
    require_support(actor)
    if reason is not None and not rules.is_text_of(reason, 0, rules.INVALIDATION_REASON_MAX):
        raise exc.invalid_fields(
            {"invalidationReason": "must be " + rules.INVALIDATION_REASON_RULE}
        )
    with transaction.atomic():
        code = selectors.code_lookup(scan_code, for_update=True)
        check_code_type_matches(code, code_type_name)
        guard(code.state, State.INVALIDATED, move=Move.INVALIDATE)
        now = timezone.now()
        previous = code.state
        code.state = State.INVALIDATED
        code.invalidated_at = now
        code.invalidation_reason = reason or None
        code.updated_at = now
        code.version += 1
        code.save(
            update_fields=[
                "state",
                "invalidated_at",
                "invalidation_reason",
                "updated_at",
                "version",
            ]
        )
        audit(
            actor=actor,
            action="code.invalidate",
            code_type_name=code.code_type.name,
            target_id=str(code.pk),
            scan_code=code.scan_code,
            details={"reason": reason or "", "from": previous},
            at=now,
        )
    return code


def code_update_custom_info(
    *,
    actor: Actor,
    scan_code: str,
    version: int,
    custom_code_info: dict[str, Any],
    code_type_name: str | None = None,
) -> Code:
    """Replace a code's customCodeInfo if `version` is still current (any state)."""
    require_support(actor)
    info = check_json_object(custom_code_info, "customCodeInfo")
    with transaction.atomic():
        code = selectors.code_lookup(scan_code, for_update=True)
        check_code_type_matches(code, code_type_name)
        check_type_in_use(code.code_type)
        if version != code.version:
            raise exc.VersionMismatchError(details={"version": code.version})
        now = timezone.now()
        code.custom_code_info = info
        code.version += 1
        code.updated_at = now
        code.save(update_fields=["custom_code_info", "version", "updated_at"])
        audit(
            actor=actor,
            action="code.update_custom_info",
            code_type_name=code.code_type.name,
            target_id=str(code.pk),
            scan_code=code.scan_code,
            at=now,
        )
    return code


def code_reset(*, actor: Actor, scan_code: str, state: str = State.INACTIVE) -> Code:
    """Put one code back to Inactive or Available, clearing redemption data and attempts.

    Support may reset a code in any state but Redeemed: putting a redeemed code back in play
    re-issues value someone already received, which needs Ops.
    """
    require_support(actor)
    target = check_initial_state(state, "state")
    with transaction.atomic():
        code = selectors.code_lookup(scan_code, for_update=True)
        if code.state == State.REDEEMED:
            require_ops(actor)
        previous = {"state": code.state, "redeemedByProfileId": code.redeemed_by_profile_id}
        now = timezone.now()
        claims.codes_reset(ids=[code.pk], to_state=target, now=now)
        code.refresh_from_db()
        audit(
            actor=actor,
            action="code.reset",
            code_type_name=code.code_type.name,
            target_id=str(code.pk),
            scan_code=code.scan_code,
            details={"to": target, "from": previous},
            at=now,
        )
    return code


def batch_invalidate(*, actor: Actor, batch_id: UUID, reason: str = "") -> int:
    """Invalidate every code of one batch that may still be invalidated; return the count."""
    require_ops(actor)
    with transaction.atomic():
        batch = Batch.objects.select_related("code_type").filter(pk=batch_id).first()
        if batch is None:
            raise exc.invalid_fields({"batchId": "no such batch"})
        now = timezone.now()
        count = claims.batch_codes_invalidate(batch_id=batch.pk, reason=reason or None, now=now)
        batch.invalidated_at = now
        batch.save(update_fields=["invalidated_at"])
        audit(
            actor=actor,
            action="batch.invalidate",
            code_type_name=batch.code_type.name,
            target_id=str(batch.pk),
            details={"count": count, "reason": reason},
            at=now,
        )
    return count
