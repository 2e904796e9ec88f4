"""Sign-in counters: a try is taken by a conditional UPDATE whose row count decides.

Each counter (one account across addresses, one client IP across accounts) holds the failures
since its last quiet period. A counter whose last failure is older than the cool-off starts
again from nothing. Taking a try and counting it are one statement, so however many requests
race, no more than `limit` of them get through while the counter is within its cool-off.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Case, F, Q, Value, When

from redemption.models import SignInCounter

# The last failure of a counter that has none (it is older than any cool-off).
NEVER = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limit:
    """One counter and the failures it allows within the cool-off."""

    key: str
    limit: int


def tries_take(limits: Iterable[Limit], *, now: datetime, since: datetime) -> bool:
    """Count one try on every counter, or on none if any is at its limit; True if taken.

    `since` is the start of the cool-off: failures before it no longer count. The counters
    are taken in key order, so two racing requests never wait for each other's rows in
    opposite orders.
    """
    ordered = sorted(limits, key=lambda lim: lim.key)
    with transaction.atomic():
        SignInCounter.objects.bulk_create(
            [SignInCounter(key=lim.key, failures=0, last_failure_at=NEVER) for lim in ordered],
            ignore_conflicts=True,
        )
        for lim in ordered:
            quiet = Q(last_failure_at__lte=since)
            taken = SignInCounter.objects.filter(
                Q(key=lim.key) & (Q(failures__lt=lim.limit) | quiet)
            ).update(
                failures=Case(When(quiet, then=Value(1)), default=F("failures") + 1),
                last_failure_at=now,
            )
            if not taken:
                transaction.set_rollback(True)
                return False
    return True


def tries_give_back(keys: Iterable[str]) -> None:
    """Uncount one try on each counter (the try succeeded: it was no failure)."""
    SignInCounter.objects.filter(key__in=list(keys), failures__gt=0).update(
        failures=F("failures") - 1
    )


def counters_clear(keys: Iterable[str]) -> int:
    """Forget the failures of these counters; return how many counters had any."""
    cleared = SignInCounter.objects.filter(key__in=list(keys), failures__gt=0).update(failures=0)
    return cleared


def counters_clear_prefixed(prefix: str) -> int:
    """Forget the failures of every counter whose key starts with `prefix`."""
    return SignInCounter.objects.filter(key__startswith=prefix, failures__gt=0).update(failures=0)


def counters_read(keys: Iterable[str]) -> dict[str, SignInCounter]:
    """The counters with these keys that exist, by key."""
    return {c.key: c for c in SignInCounter.objects.filter(key__in=list(keys))}


def counters_prune(*, before: datetime) -> int:
    """Delete counters whose last failure is older than `before`; return how many."""
    deleted, _ = SignInCounter.objects.filter(last_failure_at__lt=before).delete()
    return deleted
