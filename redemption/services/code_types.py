"""Create, update and configure code types (campaigns)."""

import re
import secrets
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from redemption import codes, selectors
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.db import claims
from redemption.models import SLOT_STATES, Code, CodeType, SharedRedemption, State, UseType
from redemption.services._common import audit, check_json_object, require_ops

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
FULFILLMENT_KEYS = {"url", "async", "maxRetries", "timeoutSeconds"}
UNSET: Any = object()


def _check_window(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise exc.invalid_fields({"validEnd": "must be later than validStart"})


def _check_max(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise exc.invalid_fields({"maxRedemptions": "must be a positive whole number or null"})
    return value


def validate_fulfillment(value: Any) -> dict[str, Any] | None:
    """Check a fulfillment object ({url, async, maxRetries, timeoutSeconds}) or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise exc.invalid_fields({"fulfillment": "must be an object or null"})
    unknown = set(value) - FULFILLMENT_KEYS
    if unknown:
        raise exc.invalid_fields({f"fulfillment.{k}": "unknown field" for k in sorted(unknown)})
    errors: dict[str, str] = {}
    url = value.get("url")
    if (
        not isinstance(url, str)
        or not re.match(r"^https?://[^\s/$.?#][^\s]*$", url)
        or len(url) > 500
    ):
        errors["fulfillment.url"] = "must be an http(s) URL of at most 500 characters"
    is_async = value.get("async", False)
    if not isinstance(is_async, bool):
        errors["fulfillment.async"] = "must be true or false"
    retries = value.get("maxRetries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        errors["fulfillment.maxRetries"] = "must be a whole number from 0 to 10"
    timeout = value.get("timeoutSeconds", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 86400:
        errors["fulfillment.timeoutSeconds"] = "must be a whole number from 1 to 86400"
    if errors:
        raise exc.invalid_fields(errors)
    return {"url": url, "async": is_async, "maxRetries": retries, "timeoutSeconds": timeout}


def _apply_fulfillment(ct: CodeType, value: dict[str, Any] | None) -> None:
    if value is None:
        ct.fulfillment_url = ""
        ct.fulfillment_async = False
        ct.fulfillment_max_retries = 0
        ct.fulfillment_timeout_seconds = 30
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
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or not name.strip("."):
        # All-dot names ("." or "..") would be rewritten by browsers inside URL paths.
        raise exc.invalid_fields(
            {"codeType": "1-64 characters of A-Z a-z 0-9 _ . - (not only dots)"}
        )
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
    elif scan_code:
        raise exc.invalid_fields({"scanCode": "only shared (MULTI) code types have a scan code"})
    elif max_redemptions is not None:
        raise exc.invalid_fields({"maxRedemptions": "only shared (MULTI) code types have a cap"})
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
        is_disabled=bool(is_disabled),
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
    description: Any = UNSET,
    scan_code: Any = UNSET,
    valid_start: Any = UNSET,
    valid_end: Any = UNSET,
    max_redemptions: Any = UNSET,
    custom_code_info: Any = UNSET,
    is_disabled: Any = UNSET,
    fulfillment: Any = UNSET,
) -> CodeType:
    """Change a code type's settings; name and use type are fixed once created."""
    require_ops(actor)
    changed: list[str] = []
    try:
        with transaction.atomic():
            ct = selectors.code_type_get(name, for_update=True)
            if expected_version is not None and expected_version != ct.version:
                raise exc.VersionMismatchError(details={"version": ct.version})
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
                if not ct.is_shared and max_redemptions is not None:
                    raise exc.invalid_fields(
                        {"maxRedemptions": "only shared (MULTI) code types have a cap"}
                    )
                ct.max_redemptions = _check_max(max_redemptions)
                if ct.max_redemptions is not None and ct.redemption_count > ct.max_redemptions:
                    raise exc.invalid_fields(
                        {"maxRedemptions": f"is below the {ct.redemption_count} already counted"}
                    )
                changed.append("max_redemptions")
            if custom_code_info is not UNSET:
                ct.custom_code_info = check_json_object(custom_code_info, "customCodeInfo")
                changed.append("custom_code_info")
            if is_disabled is not UNSET:
                if not isinstance(is_disabled, bool):
                    raise exc.invalid_fields({"isDisabled": "must be true or false"})
                ct.is_disabled = is_disabled
                changed.append("is_disabled")
            if fulfillment is not UNSET:
                _apply_fulfillment(ct, validate_fulfillment(fulfillment))
                changed += [
                    "fulfillment_url",
                    "fulfillment_async",
                    "fulfillment_max_retries",
                    "fulfillment_timeout_seconds",
                    "webhook_secret",
                ]
            if scan_code is not UNSET:
                if not ct.is_shared:
                    raise exc.invalid_fields(
                        {"scanCode": "only shared (MULTI) code types have a scan code"}
                    )
                canon = codes.canonical_or_error(scan_code)
                if canon != ct.canonical_scan_code:
                    Code.objects.filter(code_type=ct, is_shared_anchor=True).update(
                        scan_code=codes.display(scan_code), canonical=canon
                    )
                ct.scan_code = codes.display(scan_code)
                ct.canonical_scan_code = canon
                changed += ["scan_code", "canonical_scan_code"]
            ct.version = F("version") + 1  # type: ignore[assignment]
            ct.updated_at = timezone.now()
            ct.save(update_fields=[*changed, "version", "updated_at"])
            audit(
                actor=actor,
                action="code_type.update",
                code_type_name=name,
                target_id=str(ct.pk),
                details={"fields": sorted(set(changed))},
            )
    except IntegrityError:
        raise exc.CodeDuplicateError(details={"scanCode": scan_code}) from None
    ct.refresh_from_db()
    return ct


def code_type_rotate_secret(*, actor: Actor, name: str) -> CodeType:
    """Replace the webhook signing secret; the old one stops working at once."""
    require_ops(actor)
    with transaction.atomic():
        ct = selectors.code_type_get(name, for_update=True)
        ct.webhook_secret = new_webhook_secret()
        ct.updated_at = timezone.now()
        ct.save(update_fields=["webhook_secret", "updated_at"])
        audit(
            actor=actor, action="code_type.rotate_secret", code_type_name=name, target_id=str(ct.pk)
        )
    return ct


def shared_redemption_delete(*, actor: Actor, code_type_name: str, profile_id: str) -> None:
    """Delete one profile's redemption of a shared code so it may redeem again."""
    require_ops(actor)
    with transaction.atomic():
        ct = selectors.code_type_get(code_type_name, for_update=True)
        if not ct.is_shared:
            raise exc.TypeMustBeSingleUseError(
                "Only shared (MULTI) code types have per-profile redemptions."
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
