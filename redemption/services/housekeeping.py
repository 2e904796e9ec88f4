"""The periodic housekeeping: one function, run by every `db_worker` and by `manage.py sweep`.

Each `manage.py db_worker` offers to run it every few seconds; the first to claim the current
time slot (one conditional UPDATE on a `PeriodicRun` row) runs it, so it runs once per slot
while any worker lives, whatever happened to the run before: no chain of tasks to break.
"""

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from redemption import ratelimit, sign_in_limits
from redemption.braincloud import s2s_sessions
from redemption.braincloud import sessions as wire_sessions
from redemption.db import counts
from redemption.models import IdempotencyRecord, PeriodicRun
from redemption.services import sweep_timeouts
from redemption.services.bulk import jobs_fail_abandoned

logger = logging.getLogger(__name__)

# A retry with the same Idempotency-Key gets the first answer for at least this long.
IDEMPOTENCY_KEEP_FOR = timedelta(hours=24)
HOUSEKEEPING = "housekeeping"
COUNT_FOLD = "count-fold"


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    timed_out: int  # InProgress attempts whose window had passed, now Failed
    failures_pruned: int  # failed-redeem rows older than the rate-limit window
    idempotency_pruned: int  # idempotency records past their keeping time
    count_rows: int  # per-(type, state) count rows left after folding the deltas
    jobs_failed: int = 0  # jobs whose lease ran out too often, now failed
    sign_in_counters_pruned: int = 0  # staff sign-in counters quiet past their cool-off
    wire_sessions_pruned: int = 0  # brainCloud client sessions expired over a day ago
    s2s_sessions_pruned: int = 0  # S2S sessions expired over a day ago, or of revoked keys


def sweep(*, now: datetime | None = None) -> SweepReport:
    """Fail timed-out attempts and abandoned jobs, prune old rows, fold count deltas."""
    now = now or timezone.now()
    return SweepReport(
        timed_out=sweep_timeouts(now=now),
        failures_pruned=ratelimit.prune(),
        idempotency_pruned=idempotency_records_prune(now=now),
        count_rows=counts.compact(),
        jobs_failed=jobs_fail_abandoned(now=now),
        sign_in_counters_pruned=sign_in_limits.prune(now=now),
        wire_sessions_pruned=wire_sessions.sessions_prune(now=now),
        s2s_sessions_pruned=s2s_sessions.s2s_sessions_prune(now=now),
    )


def idempotency_records_prune(*, now: datetime | None = None) -> int:
    """Delete idempotency records older than IDEMPOTENCY_KEEP_FOR; return how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_KEEP_FOR
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def periodic_slot(now: datetime, seconds: int | None = None) -> int:
    """The number of the time slot `now` falls in (one slot per `seconds`, by default
    SWEEP_INTERVAL_SECONDS)."""
    interval = settings.SWEEP_INTERVAL_SECONDS if seconds is None else seconds
    return int(now.timestamp()) // max(1, interval)


def periodic_claim(*, name: str, slot: int, runner: str, now: datetime) -> bool:
    """Claim slot `slot` of the periodic work `name` for `runner`; False if another has it."""
    won = PeriodicRun.objects.filter(name=name, slot__lt=slot).update(
        slot=slot, runner=runner, started_at=now, finished_at=None
    )
    if won:
        return True
    if PeriodicRun.objects.filter(name=name).exists():
        return False
    try:
        with transaction.atomic():
            PeriodicRun.objects.create(name=name, slot=slot, runner=runner, started_at=now)
    except IntegrityError:
        return False  # another runner created the row (and so claimed the slot) first
    return True


def periodic_run(*, runner: str, now: datetime | None = None) -> SweepReport | None:
    """Run the sweep if `runner` wins the current slot; None when another runner has it."""
    now = now or timezone.now()
    if not periodic_claim(name=HOUSEKEEPING, slot=periodic_slot(now), runner=runner, now=now):
        return None
    report = _run_claimed(HOUSEKEEPING, runner, lambda: sweep(now=now))
    logger.info("housekeeping by %s: %s", runner, report)
    return report


def count_fold_run(*, runner: str, now: datetime | None = None) -> int | None:
    """Fold the count deltas if `runner` wins the current COUNT_FOLD_SECONDS slot: how many
    count rows are left, or None when another runner has the slot (or nothing needs folding:
    SQLite counts the codes themselves).

    The sweep folds them too, but once a minute lets tens of thousands of rows pile up under a
    busy redeem load, and every inventory and type page sums them all.
    """
    if not counts.uses_triggers():
        return None
    now = now or timezone.now()
    slot = periodic_slot(now, settings.COUNT_FOLD_SECONDS)
    if not periodic_claim(name=COUNT_FOLD, slot=slot, runner=runner, now=now):
        return None
    return _run_claimed(COUNT_FOLD, runner, _fold_and_vacuum)


def _fold_and_vacuum() -> int:
    left = counts.compact()
    counts.vacuum()
    return left


def _run_claimed[T](name: str, runner: str, work: Callable[[], T]) -> T:
    """Run the periodic work `name` that `runner` has just claimed; record how it ended."""
    try:
        result = work()
    except Exception as err:
        with contextlib.suppress(DatabaseError):  # the database may be what failed
            PeriodicRun.objects.filter(name=name, runner=runner).update(
                finished_at=timezone.now(), last_error=f"{type(err).__name__}: {err}"[:1000]
            )
        raise
    PeriodicRun.objects.filter(name=name, runner=runner).update(
        finished_at=timezone.now(), last_error=""
    )
    return result
