"""Helpers shared by the service modules: audit rows, roles, records, input checks."""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.utils import timezone

from redemption import exceptions as exc
from redemption import permissions, rules
from redemption.actors import Actor
from redemption.db import claims
from redemption.models import INITIAL_STATES, AuditEvent, Code, CodeType, SharedRedemption, State


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


def require_admin(actor: Actor) -> None:
    """Superusers and the system (management commands) only: not server keys, not profiles."""
    if actor.kind == "system":
        return
    if actor.kind == "staff" and permissions.is_admin(actor.user):
        return
    raise exc.PermissionDeniedError()


def require(actor: Actor, role: str) -> None:
    """Raise PermissionDeniedError unless the actor holds `role` (server keys hold every role)."""
    if not actor.has_role(role):
        raise exc.PermissionDeniedError()


def require_ops(actor: Actor) -> None:
    require(actor, permissions.OPS)


def require_support(actor: Actor) -> None:
    require(actor, permissions.SUPPORT)


# A personal code, or one profile's redemption of a shared code type: what attempts belong to.
Record = Code | SharedRedemption


def attempt_owner(owner_id: UUID, shared: bool) -> dict[str, UUID]:
    """The Attempt filter that selects the attempts of one record."""
    return {"shared_id": owner_id} if shared else {"code_id": owner_id}


def record_for_update(owner_id: UUID, shared: bool) -> Record | None:
    """Lock one record (code or shared redemption) with its type; None if it is gone."""
    if shared:
        return claims.shared_for_update(shared_id=owner_id)
    return claims.code_for_update(code_id=owner_id)


def record_scan_code(owner: Record) -> str:
    """The scan code a record is redeemed with (a shared type's own scan code)."""
    if isinstance(owner, SharedRedemption):
        return owner.code_type.scan_code or ""
    return owner.scan_code


def check_code_type_matches(code: Code, code_type_name: str | None) -> None:
    if code_type_name is not None and code.code_type.name != code_type_name:
        if not CodeType.objects.filter(name=code_type_name).exists():
            raise exc.CodeTypeNotFoundError(details={"codeType": code_type_name})
        raise exc.CodeTypeMismatchError(details={"codeType": code_type_name})


def check_initial_state(value: str | None, field: str = "codeState") -> str:
    """Return the state a new or reset code starts in: Inactive (the default) or Available."""
    if value is None:
        return State.INACTIVE
    if value not in INITIAL_STATES:
        raise exc.invalid_fields({field: "must be Inactive or Available"})
    return str(value)


def check_json_object(value: dict[str, Any] | None, field: str) -> dict[str, Any]:
    """Return the object ({} for None) if every database can store it and it is small enough,
    else raise naming `field`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exc.invalid_fields({field: "must be a JSON object"})
    problem = rules.json_value_problem(value)
    if problem:
        raise exc.invalid_fields({field: problem})
    if not rules.json_fits(rules.compact_json(value)):
        raise exc.invalid_fields({field: "must be " + rules.JSON_OBJECT_RULE})
    return value
