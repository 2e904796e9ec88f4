"""The periodic housekeeping: one function, run by the sweep task and by `manage.py sweep`."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from redemption import ratelimit
from redemption.db import counts
from redemption.models import IdempotencyRecord
from redemption.services import sweep_timeouts

# A retry with the same Idempotency-Key gets the first answer for at least this long.
IDEMPOTENCY_KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    timed_out: int  # InProgress attempts whose window had passed, now Failed
    failures_pruned: int  # failed-redeem rows older than the rate-limit window
    idempotency_pruned: int  # idempotency records past their keeping time
    count_rows: int  # per-(type, state) count rows left after folding the deltas


def sweep(*, now: datetime | None = None) -> SweepReport:
    """Fail timed-out attempts, prune rate-limit and idempotency rows, fold count deltas."""
    now = now or timezone.now()
    return SweepReport(
        timed_out=sweep_timeouts(now=now),
        failures_pruned=ratelimit.prune(),
        idempotency_pruned=idempotency_records_prune(now=now),
        count_rows=counts.compact(),
    )


def idempotency_records_prune(*, now: datetime | None = None) -> int:
    """Delete idempotency records older than IDEMPOTENCY_KEEP_FOR; return how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_KEEP_FOR
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
