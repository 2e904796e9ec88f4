"""Every read used by views and the API; select_related lives here."""

from typing import Any

from django.db.models import QuerySet

from redemption import codes
from redemption import exceptions as exc
from redemption.db import claims, counts
from redemption.models import (
    STATE_ORDER,
    Attempt,
    AuditEvent,
    Batch,
    Code,
    CodeType,
    SharedRedemption,
    State,
)


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(STATE_ORDER, 0)


def state_counts(code_type: CodeType) -> dict[str, int]:
    """Per-state counts of one code type (personal codes, or shared redemptions)."""
    return state_counts_by_type([code_type]).get(code_type.pk, empty_counts())


def state_counts_by_type(code_types: list[CodeType] | None = None) -> dict[int, dict[str, int]]:
    """Per-state counts for many code types (trigger-kept counters on PostgreSQL)."""
    ids = None if code_types is None else [ct.pk for ct in code_types]
    return counts.by_type(ids)


def inventory_summary() -> list[dict[str, Any]]:
    """One row per code type: use type, per-state counts, total, disabled flag."""
    types = list(CodeType.objects.all())
    counts = state_counts_by_type(types)
    rows = []
    for ct in types:
        c = counts.get(ct.pk, empty_counts())
        rows.append({"code_type": ct, "counts": c, "total": sum(c.values())})
    return rows


def code_type_get(name: str, *, for_update: bool = False) -> CodeType:
    """The code type called `name` (locked for a write with `for_update`), or CodeTypeNotFound."""
    if for_update:
        found = claims.code_type_for_update(name=name)
    else:
        found = CodeType.objects.filter(name=name).first()
    if found is None:
        raise exc.CodeTypeNotFoundError(details={"codeType": name})
    return found


def code_lookup(scan_code: str, *, for_update: bool = False) -> Code:
    """The personal code for any spelling of `scan_code`, with its type (and batch).

    Raises INVALID_SCAN_CODE for a malformed scan code, or for a check-character typo on a
    plain read; otherwise NOT_FOUND. `for_update` locks the row for a write (without the
    batch); a write reports a typo as NOT_FOUND.
    """
    canon = codes.canonical_or_error(scan_code)
    if for_update:
        code = claims.code_for_update_by_canonical(canon)
    else:
        code = (
            Code.objects.select_related("code_type", "batch")
            .filter(canonical=canon, is_shared_anchor=False)
            .first()
        )
    if code is None:
        if not for_update and check_character_fails(canon):
            raise exc.InvalidScanCodeError("The scan code has a typing mistake (check character).")
        raise exc.CodeNotFoundError(details={"scanCode": codes.display(scan_code)})
    return code


def code_or_shared_type_lookup(scan_code: str) -> Code | CodeType:
    """The personal code, or the shared code type whose scan code this is, by any spelling."""
    canon = codes.canonical_or_error(scan_code)
    shared = CodeType.objects.filter(canonical_scan_code=canon).first()
    if shared is not None:
        return shared
    return code_lookup(scan_code)


def check_character_fails(canon: str) -> bool:
    """True when the code has the shape of a check-character batch but its check is wrong:
    the person mistyped (INVALID_SCAN_CODE rather than NOT_FOUND)."""
    shapes = {
        codes.CodeShape(algorithm=a, length=n, prefix=p, include_check=True)
        for a, n, p in Batch.objects.filter(include_check=True, length__isnull=False)
        .values_list("algorithm", "length", "prefix")
        .distinct()
        if n is not None
    }
    return any(shape.check_fails(canon) for shape in shapes)


def code_attempts(code: Code) -> QuerySet[Attempt]:
    return Attempt.objects.filter(code=code).order_by("attempt")


def code_history(code: Code) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(target_id=str(code.pk)).order_by("at", "id")


def redeemed_by_profile(
    profile_id: str, *, code_type_name: str | None = None, redeemed_only: bool = True
) -> list[Code | SharedRedemption]:
    """Codes and shared redemptions of one profile, newest first."""
    personal = Code.objects.select_related("code_type").filter(
        redeemed_by_profile_id=profile_id, is_shared_anchor=False
    )
    shared = SharedRedemption.objects.select_related("code_type").filter(profile_id=profile_id)
    if redeemed_only:
        personal = personal.filter(state=State.REDEEMED)
        shared = shared.filter(state=State.REDEEMED)
    if code_type_name is not None:
        personal = personal.filter(code_type__name=code_type_name)
        shared = shared.filter(code_type__name=code_type_name)
    records: list[Code | SharedRedemption] = [*personal, *shared]
    records.sort(key=lambda r: r.redeemed_at or r.updated_at, reverse=True)
    return records


def totals_by_state() -> dict[str, int]:
    """Per-state totals over every code type."""
    totals = empty_counts()
    for per_type in counts.by_type().values():
        for state, n in per_type.items():
            totals[state] += n
    return totals
