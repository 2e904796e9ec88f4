"""Reads about redemptions: one profile's records and attempts, redemptions per day."""

import heapq
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from redemption import rules
from redemption.models import (
    REDEMPTION_EVENT,
    Attempt,
    AuditEvent,
    Code,
    CodeType,
    SharedRedemption,
    State,
)
from redemption.selectors.paging import after_key, cursor_decode, cursor_encode

# Newest first: when the profile redeemed it, or, while it is in progress or failed, when it
# last changed. Indexes on (profile, this, id) let a page start at its cursor (migration 0007).
RECENT = Coalesce("redeemed_at", "updated_at")
PROFILE_RECORDS = "profile-records"


@dataclass(frozen=True)
class RecordPage:
    """One page of a profile's records, newest first, and the cursor of the next page."""

    records: list[Code | SharedRedemption]
    next_cursor: str | None


def profile_records_page(
    profile_id: str,
    *,
    code_type_id: int | None = None,
    redeemed_only: bool = True,
    cursor: str | None = None,
    limit: int = rules.PAGE_LIMIT_DEFAULT,
) -> RecordPage:
    """Codes and shared redemptions of one profile, newest first, one page at a time.

    Each table is read from its (profile, recent, id) index starting at the cursor, at most
    `limit` + 1 rows each; the two are merged, so a page costs the same however many records
    the profile has.
    """
    personal = Code.objects.filter(redeemed_by_profile_id=profile_id, is_shared_anchor=False)
    shared = SharedRedemption.objects.filter(profile_id=profile_id)
    if redeemed_only:
        personal = personal.filter(state=State.REDEEMED)
        shared = shared.filter(state=State.REDEEMED)
    if code_type_id is not None:
        personal = personal.filter(code_type_id=code_type_id)
        shared = shared.filter(code_type_id=code_type_id)
    key = None if cursor is None else cursor_decode(PROFILE_RECORDS, cursor, (datetime, uuid.UUID))
    pages: list[list[Any]] = []
    for qs in (personal, shared):
        qs = qs.select_related("code_type").annotate(recent=RECENT)
        if key is not None:
            qs = qs.filter(after_key(("recent", "pk"), key, descending=True))
        pages.append(list(qs.order_by("-recent", "-pk")[: limit + 1]))
    merged = list(heapq.merge(*pages, key=lambda r: (r.recent, r.pk.int), reverse=True))
    records, more = merged[:limit], len(merged) > limit
    next_cursor = (
        cursor_encode(PROFILE_RECORDS, [records[-1].recent, records[-1].pk]) if more else None
    )
    return RecordPage(records=records, next_cursor=next_cursor)


def profile_record_counts(profile_id: str, *, code_type_id: int | None = None) -> tuple[int, int]:
    """How many records one profile has, and how many of them are Redeemed (two index reads)."""
    total = redeemed = 0
    for qs in (
        Code.objects.filter(redeemed_by_profile_id=profile_id, is_shared_anchor=False),
        SharedRedemption.objects.filter(profile_id=profile_id),
    ):
        if code_type_id is not None:
            qs = qs.filter(code_type_id=code_type_id)
        counts = qs.aggregate(
            total=Count("pk"), redeemed=Count("pk", filter=Q(state=State.REDEEMED))
        )
        total += counts["total"]
        redeemed += counts["redeemed"]
    return total, redeemed


def profile_open_attempts(
    profile_id: str, *, code_type_id: int | None = None, limit: int = 200
) -> list[Attempt]:
    """A profile's failed and in-progress fulfilment attempts, newest first."""
    qs = Attempt.objects.filter(profile_id=profile_id, state__in=[State.FAILED, State.IN_PROGRESS])
    if code_type_id is not None:
        qs = qs.filter(Q(code__code_type_id=code_type_id) | Q(shared__code_type_id=code_type_id))
    return list(
        qs.select_related("code__code_type", "shared__code_type").order_by("-started_at")[:limit]
    )


@dataclass(frozen=True)
class ProfileMatch:
    """A profile found by the start of its id or name."""

    profile_id: str
    profile_name: str | None


# Rows read from each prefix index per search: a bound on the work, not on the answer's size.
PROFILE_SEARCH_ROWS = 500


def profiles_matching(text: str, *, limit: int = 50) -> tuple[list[ProfileMatch], bool]:
    """Profiles whose id starts with `text` (as typed) or whose name starts with it (in any
    case), by id, at most `limit`; and whether there may be more (then type more of it).

    Each of the four reads (ids and names, of codes and of shared redemptions) walks its
    prefix index (migration 0014) for at most PROFILE_SEARCH_ROWS rows, in no order, so a
    one-letter search costs the same as an exact one.
    """
    if not text:
        return [], False
    reads = (
        Code.objects.filter(redeemed_by_profile_id__startswith=text).values_list(
            "redeemed_by_profile_id", "redeemed_by_profile_name"
        ),
        Code.objects.filter(redeemed_by_profile_name__istartswith=text).values_list(
            "redeemed_by_profile_id", "redeemed_by_profile_name"
        ),
        SharedRedemption.objects.filter(profile_id__startswith=text).values_list(
            "profile_id", "profile_name"
        ),
        SharedRedemption.objects.filter(profile_name__istartswith=text).values_list(
            "profile_id", "profile_name"
        ),
    )
    names: dict[str, str | None] = {}
    capped = False
    for qs in reads:
        rows = list(qs.order_by()[:PROFILE_SEARCH_ROWS])
        capped |= len(rows) == PROFILE_SEARCH_ROWS
        for profile_id, name in rows:
            if profile_id is not None:
                names[profile_id] = names.get(profile_id) or name
    found = [ProfileMatch(pid, names[pid]) for pid in sorted(names)]
    return found[:limit], capped or len(found) > limit


def shared_redemption_get(redemption_id: uuid.UUID) -> SharedRedemption | None:
    """One profile's redemption of a shared code type, with its type."""
    return SharedRedemption.objects.select_related("code_type").filter(pk=redemption_id).first()


def shared_redemption_history(sr: SharedRedemption, *, limit: int = 200) -> list[AuditEvent]:
    """Audit events of one shared redemption, oldest first (its redeem, attempts, replies)."""
    return list(AuditEvent.objects.filter(target_id=str(sr.pk)).order_by("at", "id")[:limit])


def shared_redemption_attempts(sr: SharedRedemption) -> list[Attempt]:
    """Every fulfilment attempt of one shared redemption, first to last."""
    return list(Attempt.objects.filter(shared=sr).order_by("attempt"))


def profile_name_of(records: list[Code | SharedRedemption]) -> str | None:
    for r in records:
        name = r.profile_name if isinstance(r, SharedRedemption) else r.redeemed_by_profile_name
        if name:
            return name
    return None


def current_attempts(records: list[Code | SharedRedemption]) -> dict[uuid.UUID, Attempt]:
    """The current attempt of each record that has one, by the record's id (one query)."""
    codes = [r.pk for r in records if isinstance(r, Code) and r.current_attempt]
    shared = [r.pk for r in records if isinstance(r, SharedRedemption) and r.current_attempt]
    if not codes and not shared:
        return {}
    wanted = {r.pk: r.current_attempt for r in records if r.current_attempt}
    found: dict[uuid.UUID, Attempt] = {}
    for row in Attempt.objects.filter(Q(code_id__in=codes) | Q(shared_id__in=shared)):
        owner = row.code_id or row.shared_id
        if owner is not None and wanted.get(owner) == row.attempt:
            found[owner] = row
    return found


def redemptions_per_day(
    *, days: int = 30, code_type_name: str | None = None, now: datetime | None = None
) -> list[tuple[date, int]]:
    """Successful redemptions per UTC day for the last `days` days, oldest first, zeros included.

    Counted from the audit events that record them (personal and shared, at once or when the
    fulfilment succeeded), not from codes now Redeemed: a reset or a deleted redemption does
    not rewrite history. One index-only read of the partial index that holds exactly those
    events (migration 0014).
    """
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    qs = AuditEvent.objects.filter(
        REDEMPTION_EVENT, at__gte=datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    )
    if code_type_name is not None:
        qs = qs.filter(code_type_name=code_type_name)
    rows = qs.annotate(day=TruncDate("at", tzinfo=UTC)).values("day").annotate(n=Count("*"))
    totals = {row["day"]: row["n"] for row in rows.order_by()}
    return [
        (first + timedelta(days=i), totals.get(first + timedelta(days=i), 0)) for i in range(days)
    ]


def shared_redemption_of(code_type: CodeType, profile_id: str) -> SharedRedemption | None:
    """One profile's redemption of a shared code type, if it has one."""
    return (
        SharedRedemption.objects.select_related("code_type")
        .filter(code_type=code_type, profile_id=profile_id)
        .first()
    )
