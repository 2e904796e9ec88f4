"""The periodic housekeeping: one function, run by the sweep task and by `sweep_timeouts`."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from redemption import ratelimit
from redemption.api import idempotency
from redemption.db import counts
from redemption.services import sweep_timeouts


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
    # Before the timeouts: sweep_timeouts prunes these rows as well, and the report counts them.
    failures_pruned = ratelimit.prune()
    return SweepReport(
        timed_out=sweep_timeouts(now=now),
        failures_pruned=failures_pruned,
        idempotency_pruned=idempotency.prune(now=now),
        count_rows=counts.compact(),
    )
