"""Every read used by views and the API; select_related lives here."""

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import Col

from redemption import codes, counts
from redemption import exceptions as exc
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


def code_type_get(name: str) -> CodeType:
    try:
        return CodeType.objects.get(name=name)
    except CodeType.DoesNotExist:
        raise exc.CodeTypeNotFoundError(details={"codeType": name}) from None


def code_lookup(scan_code: str) -> Code:
    """Find a personal code by any spelling; raise NOT_FOUND or INVALID_SCAN_CODE (typo)."""
    canon = codes.canonical(scan_code or "")
    if not codes.is_valid_canonical(canon):
        raise exc.InvalidScanCodeError()
    code = (
        Code.objects.select_related("code_type", "batch")
        .filter(canonical=canon, is_shared_anchor=False)
        .first()
    )
    if code is None:
        if check_character_fails(canon):
            raise exc.InvalidScanCodeError("The scan code has a typing mistake (check character).")
        raise exc.CodeNotFoundError()
    return code


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


def code_with_type(canon: str) -> Code | None:
    """The code (personal or shared anchor) with this canonical form, its type attached.

    The redeem hot path: the SQL is built once per database and rows are turned into
    models with the same converters the ORM uses; compiling the equivalent select_related
    query cost more CPU per redeem than PostgreSQL spent answering it.
    """
    plan = _code_with_type_plan()
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, [canon])
        row = cursor.fetchone()
    if row is None:
        return None
    values = [
        _converted(value, converters, col)
        for value, (converters, col) in zip(row, plan.columns, strict=True)
    ]
    split = len(plan.code_names)
    code = Code.from_db(connection.alias, plan.code_names, values[:split])
    code.code_type = CodeType.from_db(connection.alias, plan.type_names, values[split:])
    return code


@dataclass(frozen=True)
class _Plan:
    sql: str
    code_names: list[str]
    type_names: list[str]
    columns: list[tuple[list[Any], Col]]


_PLANS: dict[str, _Plan] = {}


def _code_with_type_plan() -> _Plan:
    plan = _PLANS.get(connection.vendor)
    if plan is None:
        quote = connection.ops.quote_name
        code_fields = Code._meta.concrete_fields
        type_fields = CodeType._meta.concrete_fields
        cols = [Col("c", f) for f in code_fields] + [Col("t", f) for f in type_fields]
        select = ", ".join(f"{c.alias}.{quote(c.target.column or '')}" for c in cols)
        sql = (
            f"SELECT {select} FROM {quote(Code._meta.db_table)} c"
            f" JOIN {quote(CodeType._meta.db_table)} t ON t.id = c.code_type_id"
            " WHERE c.canonical = %s"
        )
        columns = [
            (connection.ops.get_db_converters(c) + c.get_db_converters(connection), c) for c in cols
        ]
        plan = _Plan(
            sql=sql,
            code_names=[f.attname for f in code_fields],
            type_names=[f.attname for f in type_fields],
            columns=columns,
        )
        _PLANS[connection.vendor] = plan
    return plan


def _converted(value: Any, converters: list[Any], col: Col) -> Any:
    for converter in converters:
        value = converter(value, col, connection)
    return value


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
