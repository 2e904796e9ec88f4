"""The only place that builds row locks and conditional-update querysets."""

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import F, Q

from redemption.actors import Profile
from redemption.models import AuditEvent, Code, CodeType, SharedRedemption, State


def code_claim_for_redeem(
    *,
    code_id: UUID,
    profile: Profile,
    now: datetime,
    info: dict[str, Any],
    audit_row: dict[str, Any],
) -> int:
    """Move one Available code to Redeemed and write its audit row; return 1 if this caller won.

    On PostgreSQL the UPDATE and the audit INSERT are one statement (a data-modifying CTE):
    atomic on its own and one round trip on the hottest path. Elsewhere, one transaction.
    """
    if connection.vendor == "postgresql":
        return _claim_and_audit_postgres(
            code_id=code_id, profile=profile, now=now, info=info, audit_row=audit_row
        )
    with transaction.atomic():
        won = Code.objects.filter(pk=code_id, state=State.AVAILABLE).update(
            state=State.REDEEMED,
            redeemed_by_profile_id=profile.id,
            redeemed_by_profile_name=profile.name,
            redeemed_at=now,
            custom_redemption_info=info,
            version=F("version") + 1,
            updated_at=now,
        )
        if won:
            AuditEvent.objects.create(at=now, **audit_row)
    return won


def _claim_and_audit_postgres(
    *,
    code_id: UUID,
    profile: Profile,
    now: datetime,
    info: dict[str, Any],
    audit_row: dict[str, Any],
) -> int:
    code_table = Code._meta.db_table
    audit_table = AuditEvent._meta.db_table
    sql = (
        f"WITH claimed AS (UPDATE {code_table} SET state = %(redeemed)s,"
        " redeemed_by_profile_id = %(profile_id)s, redeemed_by_profile_name = %(profile_name)s,"
        " redeemed_at = %(now)s, custom_redemption_info = %(info)s::jsonb,"
        " version = version + 1, updated_at = %(now)s"
        " WHERE id = %(id)s AND state = %(available)s RETURNING id)"
        f" INSERT INTO {audit_table} (at, actor_kind, actor_id, actor_label, action,"
        " code_type_name, target_id, scan_code, profile_id, details)"
        " SELECT %(now)s, %(actor_kind)s, %(actor_id)s, %(actor_label)s, %(action)s,"
        " %(code_type_name)s, %(target_id)s, %(scan_code)s, %(profile_id)s, '{}'::jsonb"
        " FROM claimed"
    )
    params = {
        "redeemed": State.REDEEMED.value,
        "available": State.AVAILABLE.value,
        "id": code_id,
        "profile_id": profile.id,
        "profile_name": profile.name,
        "now": now,
        "info": json.dumps(info),
        **{k: audit_row[k] for k in AUDIT_COLUMNS},
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


AUDIT_COLUMNS = (
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "code_type_name",
    "target_id",
    "scan_code",
)


def code_claim_for_attempt(
    *,
    code_id: UUID,
    from_state: str,
    expected_attempt: int,
    profile: Profile,
    now: datetime,
    info: dict[str, Any] | None,
) -> int:
    """Move a code from `from_state` to InProgress for attempt n+1; return 1 if this caller won."""
    changes: dict[str, Any] = {
        "state": State.IN_PROGRESS,
        "current_attempt": expected_attempt + 1,
        "redeemed_by_profile_id": profile.id,
        "redeemed_by_profile_name": profile.name,
        "version": F("version") + 1,
        "updated_at": now,
    }
    if info is not None:
        changes["custom_redemption_info"] = info
    qs = Code.objects.filter(pk=code_id, state=from_state, current_attempt=expected_attempt)
    if from_state == State.FAILED:
        qs = qs.filter(redeemed_by_profile_id=profile.id)
    return qs.update(**changes)


def shared_claim_retry(*, shared_id: UUID, expected_attempt: int, now: datetime) -> int:
    """Move a Failed shared redemption to InProgress for attempt n+1; 1 if this caller won."""
    return SharedRedemption.objects.filter(
        pk=shared_id, state=State.FAILED, current_attempt=expected_attempt
    ).update(
        state=State.IN_PROGRESS,
        current_attempt=expected_attempt + 1,
        version=F("version") + 1,
        updated_at=now,
    )


def code_type_take_slot(*, code_type_id: int, now: datetime) -> int:
    """Count one more shared redemption unless the cap is reached; return 1 on success."""
    return (
        CodeType.objects.filter(pk=code_type_id)
        .filter(Q(max_redemptions__isnull=True) | Q(redemption_count__lt=F("max_redemptions")))
        .update(redemption_count=F("redemption_count") + 1)
    )


def code_type_give_slot_back(*, code_type_id: int) -> int:
    """Free the slot a failed shared attempt was holding."""
    return CodeType.objects.filter(pk=code_type_id, redemption_count__gt=0).update(
        redemption_count=F("redemption_count") - 1
    )


def code_for_update(*, code_id: UUID) -> Code | None:
    """Lock one code row (with its type read alongside) and return it, or None if gone."""
    return (
        Code.objects.select_for_update(of=("self",))
        .select_related("code_type")
        .filter(pk=code_id)
        .first()
    )


def shared_for_update(*, shared_id: UUID) -> SharedRedemption | None:
    """Lock one shared redemption row and return it, or None if gone."""
    return (
        SharedRedemption.objects.select_for_update(of=("self",))
        .select_related("code_type")
        .filter(pk=shared_id)
        .first()
    )


def code_type_for_update(*, name: str) -> CodeType | None:
    """Lock one code type row by name."""
    return CodeType.objects.select_for_update().filter(name=name).first()
