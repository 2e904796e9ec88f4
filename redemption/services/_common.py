"""Helpers shared by the service modules: audit rows, domain lookups, input checks."""

import json
from datetime import datetime
from typing import Any

from django.utils import timezone

from redemption import codes, permissions
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.models import AuditEvent, Code, CodeType

MAX_JSON_BYTES = 16 * 1024
MAX_DISPLAY = 80  # Code.scan_code's column width


def audit_fields(
    *,
    actor: Actor,
    action: str,
    code_type_name: str = "",
    target_id: str = "",
    scan_code: str = "",
    profile_id: str = "",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one audit event (everything but its time)."""
    return {
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_label": actor.label[:200],
        "action": action,
        "code_type_name": code_type_name,
        "target_id": str(target_id),
        "scan_code": scan_code,
        "profile_id": profile_id,
        "details": details or {},
    }


def audit(
    *,
    actor: Actor,
    action: str,
    code_type_name: str = "",
    target_id: str = "",
    scan_code: str = "",
    profile_id: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one audit event; call inside the transaction that makes the change."""
    return AuditEvent.objects.create(
        at=at or timezone.now(),
        **audit_fields(
            actor=actor,
            action=action,
            code_type_name=code_type_name,
            target_id=target_id,
            scan_code=scan_code,
            profile_id=profile_id,
            details=details,
        ),
    )


def require(actor: Actor, role: str) -> None:
    """Raise PermissionDeniedError unless the actor holds `role` (server keys hold every role)."""
    if not actor.has_role(role):
        raise exc.PermissionDeniedError()


def require_ops(actor: Actor) -> None:
    require(actor, permissions.OPS)


def require_support(actor: Actor) -> None:
    require(actor, permissions.SUPPORT)


def get_code_type(name: str, *, for_update: bool = False) -> CodeType:
    """Return the code type called `name` or raise CodeTypeNotFound."""
    qs = CodeType.objects.select_for_update() if for_update else CodeType.objects
    try:
        return qs.get(name=name)
    except CodeType.DoesNotExist:
        raise exc.CodeTypeNotFoundError(details={"codeType": name}) from None


def canonical_or_error(scan_code: str, *, field: str = "scanCode") -> str:
    """Return the canonical form of a scan code or raise INVALID_SCAN_CODE."""
    if not isinstance(scan_code, str):
        raise exc.InvalidScanCodeError(details={"fields": {field: "must be a string"}})
    canon = codes.canonical(scan_code)
    if not codes.is_valid_canonical(canon) or len(codes.display(scan_code)) > MAX_DISPLAY:
        raise exc.InvalidScanCodeError(
            "A scan code is 4-64 letters and digits (spaces and hyphens are ignored), "
            f"at most {MAX_DISPLAY} characters as written.",
            details={"fields": {field: "4-64 characters of A-Z and 0-9"}},
        )
    return canon


def get_code(scan_code: str, *, for_update: bool = False) -> Code:
    """Return the personal code for any spelling of `scan_code` or raise CodeNotFound."""
    canon = canonical_or_error(scan_code)
    qs = Code.objects.select_related("code_type")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    code = qs.filter(canonical=canon, is_shared_anchor=False).first()
    if code is None:
        raise exc.CodeNotFoundError(details={"scanCode": codes.display(scan_code)})
    return code


def check_code_type_matches(code: Code, code_type_name: str | None) -> None:
    if code_type_name is not None and code.code_type.name != code_type_name:
        if not CodeType.objects.filter(name=code_type_name).exists():
            raise exc.CodeTypeNotFoundError(details={"codeType": code_type_name})
        raise exc.CodeTypeMismatchError(details={"codeType": code_type_name})


def check_json_object(value: Any, field: str) -> dict[str, Any]:
    """Accept a JSON object of at most 16 KB, else raise INVALID_PARAMETER_VALUE."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exc.invalid_fields({field: "must be a JSON object"})
    if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_JSON_BYTES:
        raise exc.invalid_fields({field: "must be at most 16 KB of JSON"})
    return value
