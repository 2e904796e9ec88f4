"""Job leases: a running job belongs to one worker until its lease runs out.

A worker claims a queued job, or takes over a running one whose lease ran out, with one
conditional UPDATE. It renews the lease in the transaction of every batch it commits, on
condition that it still holds the lease: a worker that lost it (it stalled, or was taken for
dead) cannot commit one more batch, because its renewal finds no row and its transaction
rolls back. The job resumes from the last batch its previous holder committed. After
MAX_ATTEMPTS holders lost the lease the job fails instead of being taken over again.
"""

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from redemption import exceptions as exc
from redemption.models import Job
from redemption.records import ts
from redemption.services._common import audit
from redemption.services.bulk.jobs import job_actor

logger = logging.getLogger(__name__)

# Holders a job may lose before it fails: the third lease that runs out ends it.
MAX_ATTEMPTS = 3
# How many jobs one look for work considers (a claim can lose a race to another worker).
_CANDIDATES = 5


def worker_name() -> str:
    """This process as the job page names it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_seconds() -> int:
    return max(1, settings.JOB_LEASE_SECONDS)


@dataclass(frozen=True)
class Lease:
    """The right of one worker to run one job, for one attempt."""

    job_id: UUID
    owner: str
    attempt: int

    def held(self) -> QuerySet[Job]:
        """The job row, if (and only if) this lease still holds it."""
        return Job.objects.filter(
            pk=self.job_id,
            status=Job.Status.RUNNING,
            lease_owner=self.owner,
            attempts=self.attempt,
        )

    def renew(self, **fields: Any) -> None:
        """Extend the lease and write `fields` (progress) to the job; raise if it is lost.

        Call inside the transaction of the batch it accounts for: a lost lease rolls the
        batch back with it.
        """
        expires = timezone.now() + timedelta(seconds=lease_seconds())
        if not self.held().update(lease_expires_at=expires, **fields):
            raise exc.JobLeaseLostError(f"job {self.job_id}: lease of attempt {self.attempt} lost")


def expired(now: datetime) -> QuerySet[Job]:
    """Running jobs whose holder stopped renewing their lease (or that never had one)."""
    return Job.objects.filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True),
        status=Job.Status.RUNNING,
    )


def job_claim(job_id: UUID, *, worker: str, now: datetime | None = None) -> Lease | None:
    """Claim a queued job, or take over a running one whose lease ran out; else None.

    The claim and the audit event saying who started the job commit together.
    """
    now = now or timezone.now()
    expires = now + timedelta(seconds=lease_seconds())
    with transaction.atomic():
        fresh = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING,
            started_at=now,
            attempts=1,
            lease_owner=worker,
            lease_expires_at=expires,
        )
        if not fresh:
            taken = (
                expired(now)
                .filter(pk=job_id, attempts__lt=MAX_ATTEMPTS)
                .update(attempts=F("attempts") + 1, lease_owner=worker, lease_expires_at=expires)
            )
            if not taken:
                return None
        job = Job.objects.get(pk=job_id)
        previous = job.holders[-1] if job.holders else None
        holder: dict[str, Any] = {"attempt": job.attempts, "worker": worker, "at": ts(now)}
        details: dict[str, Any] = {
            "jobId": str(job.pk),
            "kind": job.kind,
            "attempt": job.attempts,
            "worker": worker,
        }
        if not fresh:
            holder["resumedFrom"] = details["resumedFrom"] = job.done
            if previous:
                details["previousWorker"] = previous.get("worker")
        Job.objects.filter(pk=job_id).update(holders=[*job.holders, holder])
        audit(
            actor=job_actor(job),
            action="job.start",
            code_type_name=job.code_type_name,
            target_id=str(job.pk),
            details=details,
            at=now,
        )
    if not fresh:
        logger.warning(
            "job %s: lease of %s ran out; %s took over (attempt %d of %d) at %d done",
            job_id,
            previous.get("worker") if previous else "an earlier worker",
            worker,
            job.attempts,
            MAX_ATTEMPTS,
            job.done,
        )
    return Lease(job_id=job.pk, owner=worker, attempt=job.attempts)


def job_resume(lease: Lease) -> bool:
    """Renew a lease this process still holds after an interruption; False if it is gone."""
    expires = timezone.now() + timedelta(seconds=lease_seconds())
    return bool(lease.held().update(lease_expires_at=expires))


def claimable_job_ids(*, now: datetime | None = None) -> list[UUID]:
    """The oldest queued jobs, then the jobs whose lease ran out with attempts left."""
    now = now or timezone.now()
    queued = Job.objects.filter(status=Job.Status.QUEUED).order_by("created_at")
    stale = expired(now).filter(attempts__lt=MAX_ATTEMPTS).order_by("created_at")
    return [
        *queued.values_list("pk", flat=True)[:_CANDIDATES],
        *stale.values_list("pk", flat=True)[:_CANDIDATES],
    ]
