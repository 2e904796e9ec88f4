"""Reads about redemptions: one profile's records and attempts, redemptions per day."""

from datetime import date, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from redemption.models import (
    Attempt,
    Code,
    SharedRedemption,
    State,
)


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


def profile_records(profile_id: str) -> list[Code | SharedRedemption]:
    """Everything one profile redeemed or attempted (codes and shared redemptions), newest first."""
    return redeemed_by_profile(profile_id, redeemed_only=False)


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
