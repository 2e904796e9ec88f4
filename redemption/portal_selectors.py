"""Reads the staff portal needs beyond redemption.selectors (lists, pages, charts)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Count, ForeignKey, Lookup, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from redemption import exceptions as exc
from redemption.ids import uuid_or_none
from redemption.models import (
    Attempt,
    AuditEvent,
    Batch,
    Code,
    CodeType,
    Job,
    Move,
    ServerKey,
    SharedRedemption,
    State,
    sources_of,
)


@dataclass(frozen=True)
class KeysetPage:
    """One page of rows ordered by primary key, with the cursors of its neighbours."""

    rows: list[Any]
    after: str | None  # cursor for the next page (rows with a larger key)
    before: str | None  # cursor for the previous page (rows with a smaller key)
    is_first: bool


def keyset_page(
    qs: QuerySet[Any],
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int = 50,
    leading: tuple[str, ...] = ("code_type_id",),
) -> KeysetPage:
    """Return one page of `qs` ordered by id, never counting the whole set (one query).

    `qs` is filtered to one value of each `leading` column; ordering by them too lets the
    planner walk the (code_type, id) index instead of the primary key, which with 10M codes
    of one type among others skipped millions of rows for the first page.
    """
    after_id, before_id = uuid_or_none(after), uuid_or_none(before)
    if before_id is not None:
        descending = [f"-{name}" for name in leading]
        rows = list(qs.filter(pk__lt=before_id).order_by(*descending, "-pk")[: per_page + 1])
        has_more_before = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        return KeysetPage(
            rows=rows,
            after=str(rows[-1].pk) if rows else None,
            before=str(rows[0].pk) if rows and has_more_before else None,
            is_first=not has_more_before,
        )
    if after_id is not None:
        qs = qs.filter(pk__gt=after_id)
    rows = list(qs.order_by(*leading, "pk")[: per_page + 1])
    has_more = len(rows) > per_page
    rows = rows[:per_page]
    return KeysetPage(
        rows=rows,
        after=str(rows[-1].pk) if rows and has_more else None,
        before=str(rows[0].pk) if rows and after_id is not None else None,
        is_first=after_id is None,
    )


def code_types_for_choices() -> list[tuple[str, str]]:
    """(name, label) pairs of every code type, for select boxes."""
    return [(n, n) for n in CodeType.objects.order_by("name").values_list("name", flat=True)]


def first_code(*, code_type: CodeType, state: str) -> Code | None:
    """The first code (by id) of a type in a state, e.g. for a quick manual test."""
    return (
        Code.objects.filter(code_type=code_type, state=state, is_shared_anchor=False)
        .order_by("pk")
        .first()
    )


class AnyOf(Lookup):
    """`column = ANY(array)`: PostgreSQL keeps it as an index condition where `column = x`
    would be folded away from ORDER BY, leaving the planner to walk the primary key."""

    lookup_name = "anyof"

    def get_prep_lookup(self) -> list[int]:
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(self.rhs))


ForeignKey.register_lookup(AnyOf)


def of_type(model: Any, code_type: CodeType) -> QuerySet[Any]:
    """Rows of one code type, filtered so a keyset page walks the (code_type, id) index.

    On PostgreSQL a plain `code_type_id = x ORDER BY id` lets the planner fold the equality
    away and walk the primary key, skipping every row of older types; `= ANY(array)` keeps it
    an index condition on (code_type, id).
    """
    if connection.vendor == "postgresql":
        return model.objects.filter(code_type__anyof=[code_type.pk])
    return model.objects.filter(code_type=code_type)


def codes_filtered(code_type: CodeType) -> QuerySet[Code]:
    """Personal codes of one type, the base of the type page's filter set."""
    return of_type(Code, code_type).filter(is_shared_anchor=False).select_related("batch")


def batches_of_type(code_type: CodeType, *, limit: int = 25) -> list[Batch]:
    """The most recent generation/import batches of a type."""
    return list(
        Batch.objects.filter(code_type=code_type)
        .select_related("code_type")
        .order_by("-created_at")[:limit]
    )


def batch_get(*, code_type: CodeType, batch_id: UUID) -> Batch:
    batch = Batch.objects.filter(code_type=code_type, pk=batch_id).first()
    if batch is None:
        raise exc.invalid_fields({"batchId": "no such batch for this code type"})
    return batch


def batch_open_count(batch: Batch) -> int:
    """How many codes of a batch an invalidation would touch (those it may still invalidate)."""
    return Code.objects.filter(
        batch=batch, state__in=sources_of(State.INVALIDATED, move=Move.INVALIDATE)
    ).count()


def recent_failed_attempts(code_type: CodeType, *, limit: int = 20) -> list[Attempt]:
    """The latest failed fulfilment attempts of a type's codes or shared redemptions."""
    base = Attempt.objects.filter(state=State.FAILED).select_related(
        "code__code_type", "shared__code_type"
    )
    if code_type.is_shared:
        qs = base.filter(shared__code_type=code_type)
    else:
        qs = base.filter(code__code_type=code_type)
    return list(qs.order_by("-started_at")[:limit])


def redemptions_per_day(*, days: int = 30, now: datetime | None = None) -> list[tuple[date, int]]:
    """Redeemed codes per UTC day for the last `days` days, oldest first, zeros included."""
    now = now or timezone.now()
    today = now.date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    totals: dict[date, int] = {}
    personal = Code.objects.filter(
        redeemed_at__gte=start, state=State.REDEEMED, is_shared_anchor=False
    )
    shared = SharedRedemption.objects.filter(redeemed_at__gte=start, state=State.REDEEMED)
    for qs in (personal, shared):
        rows = (
            qs.annotate(day=TruncDate("redeemed_at"))
            .values("day")
            .annotate(n=Count("*"))
            .order_by()
        )
        for row in rows:
            totals[row["day"]] = totals.get(row["day"], 0) + row["n"]
    return [
        (first + timedelta(days=i), totals.get(first + timedelta(days=i), 0)) for i in range(days)
    ]


def jobs_all() -> QuerySet[Job]:
    return Job.objects.select_related("code_type").order_by("-created_at")


def recent_jobs(*, limit: int = 8) -> list[Job]:
    return list(jobs_all()[:limit])


def audit_events() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.order_by("-at", "-id")


def server_keys() -> QuerySet[ServerKey]:
    return ServerKey.objects.select_related("created_by").order_by("-created_at")


def profile_records(profile_id: str) -> list[Code | SharedRedemption]:
    """Everything one profile redeemed or attempted (codes and shared redemptions), newest first."""
    from redemption import selectors

    return selectors.redeemed_by_profile(profile_id, redeemed_only=False)


def profile_open_attempts(profile_id: str, *, limit: int = 200) -> list[Attempt]:
    """A profile's failed and in-progress fulfilment attempts, newest first."""
    return list(
        Attempt.objects.filter(profile_id=profile_id, state__in=[State.FAILED, State.IN_PROGRESS])
        .select_related("code__code_type", "shared__code_type")
        .order_by("-started_at")[:limit]
    )


def profile_name_of(records: list[Code | SharedRedemption]) -> str | None:
    for r in records:
        name = r.profile_name if isinstance(r, SharedRedemption) else r.redeemed_by_profile_name
        if name:
            return name
    return None
