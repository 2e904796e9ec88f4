"""Create, update and configure code types (campaigns)."""

import enum
import secrets
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from redemption import codes, rules, selectors, webhook_targets
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.db import claims
from redemption.models import (
    SLOT_STATES,
    Code,
    CodeType,
    Job,
    SharedRedemption,
    State,
    StateCountDelta,
    UseType,
)
from redemption.services._common import audit, check_json_object, require_ops

OPEN_JOBS = (Job.Status.QUEUED, Job.Status.RUNNING)
FULFILLMENT_KEYS = frozenset({"url", "async", "maxRetries", "timeoutSeconds"})


class _Unset(enum.Enum):
    UNSET = "UNSET"


# An update argument that was not given; None means "clear it" where a field may be empty.
UNSET: Final = _Unset.UNSET
Unset = Literal[_Unset.UNSET]


def _check_window(start: datetime | None, end: datetime | None) -> None:
    # A conflict between two values (or a new value and the one stored), which no field's own
    # rule can state: 409, with the field named for forms.
    if start is not None and end is not None and end <= start:
        raise exc.ValidityWindowError(details={"fields": {"validEnd": _WINDOW_RULE}})


_WINDOW_RULE = "must be later than validStart"
_ONLY_SHARED_SCAN_CODE = "only shared (MULTI) code types have a scan code"
_ONLY_SHARED_CAP = "only shared (MULTI) code types have a cap"


def _check_max(value: int | None) -> int | None:
    if value is not None and not rules.is_whole_number_in(
        value, rules.MAX_REDEMPTIONS_MIN, rules.INT32_MAX
    ):
        rule = rules.whole_number_rule(rules.MAX_REDEMPTIONS_MIN, rules.INT32_MAX)
        raise exc.invalid_fields({"maxRedemptions": f"must be {rule} or null"})
    return value


def validate_fulfillment(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Check a fulfillment object ({url, async, maxRetries, timeoutSeconds}) or None.

    The object is free-form JSON to the type checker, so its keys and values are checked here;
    the URL must also be a target the portal may call (FULFILLMENT_URL_FORBIDDEN), which may
    take a DNS lookup: call this before opening a transaction.
    """
    if value is None:
        return None
    unknown = set(value) - FULFILLMENT_KEYS
    if unknown:
        raise exc.invalid_fields({f"fulfillment.{k}": "unknown field" for k in sorted(unknown)})
    errors: dict[str, str] = {}
    url = value.get("url")
    if not rules.is_webhook_url(url):
        errors["fulfillment.url"] = "must be " + rules.WEBHOOK_URL_RULE
    is_async = value.get("async", False)
    if not isinstance(is_async, bool):
        errors["fulfillment.async"] = "must be true or false"
    retries = value.get("maxRetries", rules.WEBHOOK_RETRIES_DEFAULT)
    if not rules.is_whole_number_in(retries, rules.WEBHOOK_RETRIES_MIN, rules.WEBHOOK_RETRIES_MAX):
        errors["fulfillment.maxRetries"] = "must be " + rules.whole_number_rule(
            rules.WEBHOOK_RETRIES_MIN, rules.WEBHOOK_RETRIES_MAX
        )
    timeout = value.get("timeoutSeconds", rules.WEBHOOK_TIMEOUT_DEFAULT)
    if not rules.is_whole_number_in(timeout, rules.WEBHOOK_TIMEOUT_MIN, rules.WEBHOOK_TIMEOUT_MAX):
        errors["fulfillment.timeoutSeconds"] = "must be " + rules.whole_number_rule(
            rules.WEBHOOK_TIMEOUT_MIN, rules.WEBHOOK_TIMEOUT_MAX
        )
    if errors:
        raise exc.invalid_fields(errors)
    try:
        webhook_targets.check_url(str(url))
    except webhook_targets.TargetRefused as err:
        raise exc.FulfillmentUrlForbiddenError(
            details={"fields": {"fulfillment.url": f"is not allowed: {err}"}}
        ) from None
    return {"url": url, "async": is_async, "maxRetries": retries, "timeoutSeconds": timeout}


def _apply_fulfillment(ct: CodeType, value: dict[str, Any] | None) -> None:
    if value is None:
        ct.fulfillment_url = ""
        ct.fulfillment_async = False
        ct.fulfillment_max_retries = rules.WEBHOOK_RETRIES_DEFAULT
        ct.fulfillment_timeout_seconds = rules.WEBHOOK_TIMEOUT_DEFAULT
        return
    ct.fulfillment_url = value["url"]
    ct.fulfillment_async = value["async"]
    ct.fulfillment_max_retries = value["maxRetries"]
    ct.fulfillment_timeout_seconds = value["timeoutSeconds"]
    if not ct.webhook_secret:
        ct.webhook_secret = new_webhook_secret()


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def code_type_create(
    *,
    actor: Actor,
    name: str,
    use_type: str = UseType.SINGLE,
    description: str = "",
    scan_code: str | None = None,
    valid_start: datetime | None = None,
    valid_end: datetime | None = None,
    max_redemptions: int | None = None,
    custom_code_info: dict[str, Any] | None = None,
    is_disabled: bool = False,
    fulfillment: dict[str, Any] | None = None,
) -> CodeType:
    """Create a code type; a shared type reserves its scan code in the code namespace."""
    require_ops(actor)
    if not rules.is_code_type_name(name):
        raise exc.invalid_fields({"codeType": rules.CODE_TYPE_NAME_RULE})
    if use_type not in UseType.values:
        raise exc.invalid_fields({"codeUseType": "must be SINGLE or MULTI"})
    _check_window(valid_start, valid_end)
    max_redemptions = _check_max(max_redemptions)
    info = check_json_object(custom_code_info, "customCodeInfo")
    fulfillment = validate_fulfillment(fulfillment)
    canon = None
    if use_type == UseType.MULTI:
        if not scan_code:
            raise exc.invalid_fields({"scanCode": "a shared code type needs its scan code"})
        canon = codes.canonical_or_error(scan_code)
    elif scan_code is not None:
        raise exc.invalid_fields({"scanCode": _ONLY_SHARED_SCAN_CODE})
    elif max_redemptions is not None:
        raise exc.invalid_fields({"maxRedemptions": _ONLY_SHARED_CAP})
    now = timezone.now()
    ct = CodeType(
        name=name,
        description=description or "",
        use_type=use_type,
        scan_code=codes.display(scan_code or "") if canon else None,
        canonical_scan_code=canon,
        valid_start=valid_start,
        valid_end=valid_end,
        max_redemptions=max_redemptions,
        custom_code_info=info,
        is_disabled=is_disabled,
        created_at=now,
        updated_at=now,
    )
    _apply_fulfillment(ct, fulfillment)
    try:
        with transaction.atomic():
            if CodeType.objects.filter(name=name).exists():
                raise exc.CodeTypeDuplicateError(details={"codeType": name})
            ct.save()
            if canon:
                _reserve_scan_code(ct, canon, now)
            audit(
                actor=actor,
                action="code_type.create",
                code_type_name=name,
                target_id=str(ct.pk),
                details={"codeUseType": use_type},
            )
    except IntegrityError:
        if CodeType.objects.filter(name=name).exists():
            raise exc.CodeTypeDuplicateError(details={"codeType": name}) from None
        raise exc.CodeDuplicateError(details={"scanCode": scan_code}) from None
    return ct


def _reserve_scan_code(ct: CodeType, canon: str, now: datetime) -> None:
    Code.objects.create(
        code_type=ct,
        is_shared_anchor=True,
        scan_code=ct.scan_code or canon,
        canonical=canon,
        state=State.AVAILABLE,
        created_at=now,
        updated_at=now,
    )


def code_type_update(
    *,
    actor: Actor,
    name: str,
    expected_version: int | None = None,
    description: str | Unset | None = UNSET,
    scan_code: str | Unset = UNSET,
    valid_start: datetime | Unset | None = UNSET,
    valid_end: datetime | Unset | None = UNSET,
    max_redemptions: int | Unset | None = UNSET,
    custom_code_info: dict[str, Any] | Unset | None = UNSET,
    is_disabled: bool | Unset = UNSET,
    fulfillment: dict[str, Any] | Unset | None = UNSET,
) -> CodeType:
    """Change the settings that are given (not UNSET); name and use type are fixed once made.

    The audit event names every field given and, for each that changed, its old and new value.
    """
    require_ops(actor)
    if fulfillment is not UNSET:
        fulfillment = validate_fulfillment(fulfillment)  # may look the host up: no lock held
    changed: list[str] = []
    try:
        with transaction.atomic():
            ct = selectors.code_type_get(name, for_update=True)
            if expected_version is not None and expected_version != ct.version:
                raise exc.VersionMismatchError(details={"version": ct.version})
            before = _audited_settings(ct)
            had_secret = bool(ct.webhook_secret)
            if description is not UNSET:
                ct.description = description or ""
                changed.append("description")
            if valid_start is not UNSET:
                ct.valid_start = valid_start
                changed.append("valid_start")
            if valid_end is not UNSET:
                ct.valid_end = valid_end
                changed.append("valid_end")
            _check_window(ct.valid_start, ct.valid_end)
            if max_redemptions is not UNSET:
                _check_max(max_redemptions)
                if not ct.is_shared and max_redemptions is not None:
                    raise exc.CodeUseTypeError(
                        details={"fields": {"maxRedemptions": _ONLY_SHARED_CAP}}
                    )
                ct.max_redemptions = max_redemptions
                if ct.max_redemptions is not None and ct.redemption_count > ct.max_redemptions:
                    below = f"is below the {ct.redemption_count} already counted"
                    raise exc.MaxRedemptionsReachedError(
                        f"maxRedemptions {below}.", details={"fields": {"maxRedemptions": below}}
                    )
                changed.append("max_redemptions")
            if custom_code_info is not UNSET:
                ct.custom_code_info = check_json_object(custom_code_info, "customCodeInfo")
                changed.append("custom_code_info")
            if is_disabled is not UNSET:
                ct.is_disabled = is_disabled
                changed.append("is_disabled")
            if fulfillment is not UNSET:
                _apply_fulfillment(ct, fulfillment)
                changed += [
                    "fulfillment_url",
                    "fulfillment_async",
                    "fulfillment_max_retries",
                    "fulfillment_timeout_seconds",
                    "webhook_secret",
                ]
            if scan_code is not UNSET:
                canon = codes.canonical_or_error(scan_code)
                if not ct.is_shared:
                    raise exc.CodeUseTypeError(
                        details={"fields": {"scanCode": _ONLY_SHARED_SCAN_CODE}}
                    )
                if canon != ct.canonical_scan_code:
                    Code.objects.filter(code_type=ct, is_shared_anchor=True).update(
                        scan_code=codes.display(scan_code), canonical=canon
                    )
                ct.scan_code = codes.display(scan_code)
                ct.canonical_scan_code = canon
                changed += ["scan_code", "canonical_scan_code"]
            details: dict[str, Any] = {
                "fields": sorted(set(changed)),
                "changes": _changes(before, _audited_settings(ct)),
            }
            if ct.webhook_secret and not had_secret:
                details["webhookSecretCreated"] = True
            ct.version = F("version") + 1  # type: ignore[assignment]
            ct.updated_at = timezone.now()
            ct.save(update_fields=[*changed, "version", "updated_at"])
            audit(
                actor=actor,
                action="code_type.update",
                code_type_name=name,
                target_id=str(ct.pk),
                details=details,
            )
    except IntegrityError:
        raise exc.CodeDuplicateError(details={"scanCode": scan_code}) from None
    ct.refresh_from_db()
    return ct


def code_type_rotate_secret(*, actor: Actor, name: str) -> CodeType:
    """Replace the webhook signing secret; the old one also signs calls for a grace period.

    During WEBHOOK_SECRET_GRACE_HOURS every call carries both signatures, so a receiver can
    switch to the new secret at its own pace. Rotating again within the grace period drops
    the oldest secret at once.
    """
    require_ops(actor)
    grace = timedelta(hours=max(0, settings.WEBHOOK_SECRET_GRACE_HOURS))
    with transaction.atomic():
        ct = selectors.code_type_get(name, for_update=True)
        now = timezone.now()
        if ct.webhook_secret and grace:
            ct.previous_webhook_secret = ct.webhook_secret
            ct.previous_secret_valid_until = now + grace
        else:
            ct.previous_webhook_secret = ""
            ct.previous_secret_valid_until = None
        ct.webhook_secret = new_webhook_secret()
        ct.updated_at = now
        ct.save(
            update_fields=[
                "webhook_secret",
                "previous_webhook_secret",
                "previous_secret_valid_until",
                "updated_at",
            ]
        )
        until = ct.previous_secret_valid_until
        audit(
            actor=actor,
            action="code_type.rotate_secret",
            code_type_name=name,
            target_id=str(ct.pk),
            details={"previousSecretValidUntil": until.isoformat() if until else None},
            at=now,
        )
    return ct


def code_type_secret_reveal(*, actor: Actor, name: str) -> str:
    """Return a code type's webhook signing secret for Ops to read; every reveal is audited."""
    require_ops(actor)
    with transaction.atomic():
        ct = selectors.code_type_get(name)
        if not ct.webhook_secret:
            raise exc.invalid_fields({"webhookSecret": "this code type has no signing secret"})
        audit(
            actor=actor, action="code_type.reveal_secret", code_type_name=name, target_id=str(ct.pk)
        )
    return ct.webhook_secret


# The settings a code type edit records with their old and new values: never the secret.
AUDITED_SETTINGS = (
    "description",
    "scan_code",
    "valid_start",
    "valid_end",
    "max_redemptions",
    "custom_code_info",
    "is_disabled",
    "fulfillment_url",
    "fulfillment_async",
    "fulfillment_max_retries",
    "fulfillment_timeout_seconds",
)


def _audited_settings(ct: CodeType) -> dict[str, Any]:
    found = {name: getattr(ct, name) for name in AUDITED_SETTINGS}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in found.items()}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"old", "new"}} for every audited setting whose value differs."""
    return {
        name: {"old": before[name], "new": after[name]}
        for name in AUDITED_SETTINGS
        if before[name] != after[name]
    }


def code_type_archive(*, actor: Actor, name: str, archived: bool = True) -> CodeType:
    """Archive a code type (hidden from lists by default, codes kept, nothing redeemable) or
    bring it back. Archiving an archived type, or unarchiving an active one, changes nothing
    and is not audited."""
    require_ops(actor)
    with transaction.atomic():
        ct = selectors.code_type_get(name, for_update=True)
        if ct.is_archived == archived:
            return ct
        now = timezone.now()
        ct.archived_at = now if archived else None
        ct.version = F("version") + 1  # type: ignore[assignment]
        ct.updated_at = now
        ct.save(update_fields=["archived_at", "version", "updated_at"])
        audit(
            actor=actor,
            action="code_type.archive" if archived else "code_type.unarchive",
            code_type_name=name,
            target_id=str(ct.pk),
            at=now,
        )
    ct.refresh_from_db()
    return ct


def code_type_delete(*, actor: Actor, name: str) -> None:
    """Delete a code type that has no codes and no shared redemptions (REDEMPTION_CODE_TYPE_
    NOT_EMPTY otherwise). Its batches and the shared type's scan-code reservation go with it."""
    require_ops(actor)
    with transaction.atomic():
        # The row lock makes a concurrent add or redeem wait (its foreign key needs the row),
        # so the emptiness checked here is the emptiness deleted.
        ct = selectors.code_type_get(name, for_update=True)
        codes_left = Code.objects.filter(code_type=ct, is_shared_anchor=False).exists()
        if codes_left or SharedRedemption.objects.filter(code_type=ct).exists():
            raise exc.CodeTypeNotEmptyError(details={"codeType": name})
        if Job.objects.filter(code_type=ct, status__in=OPEN_JOBS).exists():
            raise exc.CodeTypeNotEmptyError(
                "A job is still working on this code type; wait for it to finish.",
                details={"codeType": name, "jobInProgress": True},
            )
        pk, use_type = ct.pk, ct.use_type
        Code.objects.filter(code_type=ct, is_shared_anchor=True).delete()
        StateCountDelta.objects.filter(code_type_id=pk).delete()
        ct.delete()
        audit(
            actor=actor,
            action="code_type.delete",
            code_type_name=name,
            target_id=str(pk),
            details={"codeUseType": use_type},
        )


def shared_redemption_delete(*, actor: Actor, code_type_name: str, profile_id: str) -> None:
    """Delete one profile's redemption of a shared code so it may redeem again."""
    require_ops(actor)
    with transaction.atomic():
        ct = selectors.code_type_get(code_type_name, for_update=True)
        if not ct.is_shared:
            raise exc.CodeUseTypeError(
                "Only shared (MULTI) code types have per-profile redemptions.",
                details={"codeType": code_type_name, "codeUseType": ct.use_type},
            )
        sr = SharedRedemption.objects.filter(code_type=ct, profile_id=profile_id).first()
        if sr is None:
            raise exc.CodeNotFoundError("That profile has not redeemed this shared code.")
        held_slot = sr.state in SLOT_STATES
        sr.delete()
        if held_slot:
            claims.code_type_give_slot_back(code_type_id=ct.pk)
        audit(
            actor=actor,
            action="shared_redemption.delete",
            code_type_name=code_type_name,
            target_id=str(sr.pk),
            scan_code=ct.scan_code or "",
            profile_id=profile_id,
            details={"state": sr.state},
        )
