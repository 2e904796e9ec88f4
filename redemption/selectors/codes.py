"""Reads about personal codes: lookup by any spelling, lists, attempts and history."""

from collections.abc import Iterable
from uuid import UUID

from django.db.models import Q, QuerySet

from redemption import codes
from redemption import exceptions as exc
from redemption.db import claims
from redemption.models import (
    Attempt,
    AuditEvent,
    Batch,
    Code,
    CodeType,
    State,
)
from redemption.selectors.paging import of_type


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


def codes_filtered(code_type: CodeType) -> QuerySet[Code]:
    """Personal codes of one type, the base of the type page's filter set (its list shows a
    code's batch by id, so the batch is not joined)."""
    return of_type(Code, code_type).filter(is_shared_anchor=False)


def first_code(*, code_type: CodeType, state: str) -> Code | None:
    """The first code (by id) of a type in a state, e.g. for a quick manual test."""
    return (
        Code.objects.filter(code_type=code_type, state=state, is_shared_anchor=False)
        .order_by("pk")
        .first()
    )


def recent_failed_attempts(code_type: CodeType, *, limit: int = 20) -> list[Attempt]:
    """The latest failed fulfilment attempts of a type's codes or shared redemptions."""
    base = Attempt.objects.filter(state=State.FAILED)
    if code_type.is_shared:
        qs = base.filter(shared__code_type=code_type).select_related("shared__code_type")
    else:
        qs = base.filter(code__code_type=code_type).select_related("code__code_type")
    return list(qs.order_by("-started_at")[:limit])


def codes_shown_in_full(scan_codes: Iterable[str]) -> set[str]:
    """Which of these scan codes (canonical forms) anyone may see in full: personal codes that
    are Redeemed or Invalidated, and shared codes' scan codes (one query)."""
    canonicals = {c for c in (codes.canonical_or_none(s) for s in scan_codes if s) if c}
    if not canonicals:
        return set()
    return set(
        Code.objects.filter(canonical__in=canonicals)
        .filter(Q(is_shared_anchor=True) | Q(state__in=[State.REDEEMED, State.INVALIDATED]))
        .values_list("canonical", flat=True)
    )


def code_by_id(code_id: UUID) -> Code | None:
    """The personal code with this id, with its type and batch, or None."""
    return (
        Code.objects.select_related("code_type", "batch")
        .filter(pk=code_id, is_shared_anchor=False)
        .first()
    )


def code_for_scan_code(scan_code: str) -> Code | None:
    """The personal code for any spelling of `scan_code`, or None (no error for typos)."""
    canon = codes.canonical_or_none(scan_code)
    if canon is None:
        return None
    return Code.objects.filter(canonical=canon, is_shared_anchor=False).first()
