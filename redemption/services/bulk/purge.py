"""Delete all or reset all codes of a type in chosen states, as a job, in locked batches.

The request must name the states and repeat the type's name exactly; a preview counts what
each state holds. Shared types have no codes to delete: their per-profile redemptions go.
"""

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.db import claims
from redemption.models import (
    INITIAL_STATES,
    STATE_ORDER,
    Code,
    CodeType,
    Job,
    SharedRedemption,
)
from redemption.selectors import code_type_get
from redemption.services._common import require_ops
from redemption.services.bulk.jobs import JobOutcome, Progress, job_create
from redemption.services.bulk.leases import Lease

_DEADLOCK_RETRIES = 3


def delete_reset_preview(*, code_type_name: str) -> dict[str, int]:
    """Per-state counts of a type's codes (shared redemptions for a shared type), one query."""
    ct = code_type_get(code_type_name)
    counts = dict.fromkeys(STATE_ORDER, 0)
    for row in _records_of(ct).values("state").annotate(n=Count("*")).order_by():
        counts[row["state"]] = row["n"]
    return counts


def _records_of(ct: CodeType) -> QuerySet[Any]:
    if ct.is_shared:
        return SharedRedemption.objects.filter(code_type=ct)
    return Code.objects.filter(code_type=ct, is_shared_anchor=False)


def _check_bulk_request(
    ct: CodeType,
    *,
    states: Sequence[str],
    confirm_name: str,
    to_state: str | None = None,
    reset: bool = False,
) -> list[str]:
    errors: dict[str, str] = {}
    if confirm_name != ct.name:
        errors["confirm"] = "type the code type's name exactly to confirm"
    if not states or any(s not in STATE_ORDER for s in states):
        errors["states"] = f"choose one or more of {', '.join(STATE_ORDER)}"
    if reset and to_state not in INITIAL_STATES:
        errors["toState"] = "must be Inactive or Available"
    if errors:
        raise exc.invalid_fields(errors)
    return [s for s in STATE_ORDER if s in states]


def job_delete_codes_start(
    *, actor: Actor, code_type_name: str, states: list[str], confirm_name: str
) -> Job:
    """Queue the deletion of every code of a type in the given states."""
    require_ops(actor)
    ct = code_type_get(code_type_name)
    chosen = _check_bulk_request(ct, states=states, confirm_name=confirm_name)
    return _start(actor=actor, ct=ct, kind=Job.Kind.DELETE_CODES, params={"states": chosen})


def job_reset_codes_start(
    *, actor: Actor, code_type_name: str, states: list[str], to_state: str, confirm_name: str
) -> Job:
    """Queue the reset of every code of a type in the given states to Inactive or Available."""
    require_ops(actor)
    ct = code_type_get(code_type_name)
    chosen = _check_bulk_request(
        ct, states=states, confirm_name=confirm_name, to_state=to_state, reset=True
    )
    return _start(
        actor=actor,
        ct=ct,
        kind=Job.Kind.RESET_CODES,
        params={"states": chosen, "toState": to_state},
    )


def _start(*, actor: Actor, ct: CodeType, kind: str, params: dict[str, Any]) -> Job:
    with transaction.atomic():
        return job_create(actor=actor, ct=ct, kind=kind, params=params, now=timezone.now())


def _key_json(key: Any) -> Any:
    return str(key) if isinstance(key, UUID) else key


def run_delete_or_reset(job: Job, lease: Lease, progress: Progress) -> None:
    """Delete or reset the job's records batch by batch, in key order.

    Each batch commits with the last key it reached and the counts so far (the job's
    checkpoint) and the lease renewal, so a job taken over resumes after that key.
    """
    ct = job.code_type
    if ct is None:
        raise exc.CodeTypeNotFoundError(details={"codeType": job.code_type_name})
    states: list[str] = job.params["states"]
    to_state: str | None = job.params.get("toState")
    counts: Counter[str] = Counter(job.checkpoint.get("counts", {}))
    last: Any = job.checkpoint.get("last")
    base = _records_of(ct).filter(state__in=states)
    done = sum(counts.values())
    total = done + (base if last is None else base.filter(pk__gt=last)).count()
    with transaction.atomic():
        lease.renew(total=total)
    while True:
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                with transaction.atomic():
                    rows = _process_batch(ct=ct, base=base, last=last, to_state=to_state)
                    if rows:
                        batch_counts = counts + Counter(state for _, state in rows)
                        lease.renew(
                            done=sum(batch_counts.values()),
                            checkpoint={
                                "last": _key_json(rows[-1][0]),
                                "counts": dict(batch_counts),
                            },
                        )
                break
            except OperationalError:
                # PostgreSQL breaks a deadlock with a concurrent redeem by failing one side.
                if attempt == _DEADLOCK_RETRIES - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))
        if not rows:
            break
        counts = batch_counts
        last = rows[-1][0]
        progress(sum(counts.values()), total)
    # Rows can change while the job runs; a finished job reports what it did.
    with transaction.atomic():
        lease.renew(done=sum(counts.values()), total=sum(counts.values()))


def purge_outcome(job: Job, complete: bool) -> JobOutcome:
    """The end audit event of a delete-all or reset-all: counts per state, from the checkpoint."""
    states: list[str] = job.params.get("states", [])
    counts: dict[str, int] = job.checkpoint.get("counts", {})
    details: dict[str, Any] = {
        "states": states,
        "counts": {s: counts.get(s, 0) for s in states},
        "total": sum(counts.values()),
        "complete": complete,
    }
    if job.params.get("toState"):
        details["toState"] = job.params["toState"]
    if job.code_type is not None and job.code_type.is_shared:
        details["sharedRedemptions"] = True
    action = "codes.reset_all" if job.kind == Job.Kind.RESET_CODES else "codes.delete_all"
    return JobOutcome(action, str(job.code_type_id or ""), details)


def _process_batch(
    *, ct: CodeType, base: QuerySet[Any], last: Any, to_state: str | None
) -> list[tuple[Any, str]]:
    """Lock the next batch of matching rows by key, then delete or reset them; return them."""
    rows = claims.records_lock_batch(base, after=last, limit=settings.JOB_BATCH_SIZE)
    if not rows:
        return rows
    ids = [pk for pk, _ in rows]
    if ct.is_shared:
        # A shared code's per-profile records are deleted both by "delete" and by "reset":
        # with no record the profile may redeem again, which is what a reset means for them.
        claims.shared_redemptions_delete(ids=ids, code_type_id=ct.pk)
    elif to_state is None:
        claims.codes_delete(ids=ids)
    else:
        claims.codes_reset(ids=ids, to_state=to_state, now=timezone.now())
    return rows
