"""Run jobs under a lease: claim, resume, dispatch on the kind, finish with an audit event.

A job is claimed (or taken over) with its lease (`leases`); its kind's runner works in
batches, each committed together with the lease renewal and the progress it made, so the
next holder resumes exactly where the last committed batch left off. The end of a job - its
status, and the audit event saying what it did, computed from what was committed - is one
transaction, written by the holder of the lease and by nobody else.
"""

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from redemption import exceptions as exc
from redemption import metrics
from redemption.ids import uuid_or_none
from redemption.models import Job
from redemption.services._common import audit
from redemption.services.bulk import leases
from redemption.services.bulk.generate import generate_outcome, run_generate
from redemption.services.bulk.history import run_import_job
from redemption.services.bulk.imports import import_outcome
from redemption.services.bulk.jobs import (
    MAX_KEPT_LINE_ERRORS,
    JobOutcome,
    Progress,
    job_actor,
    job_error,
    job_get,
    no_progress,
)
from redemption.services.bulk.purge import purge_outcome, run_delete_or_reset

logger = logging.getLogger(__name__)

# The database went away (or refused us for now): the job is not at fault, so it is not
# failed; its holder resumes it when the database answers again (see `interrupted_jobs`).
DATABASE_GONE = (OperationalError, InterfaceError)
# How often one process resumes the same interrupted lease before leaving it to others.
_MAX_RESUMES = 3


@dataclass(frozen=True)
class JobKind:
    """How to run one kind of job and how to tell what a run did."""

    run: Callable[[Job, leases.Lease, Progress], None]
    outcome: Callable[[Job, bool], JobOutcome]
    remove_upload: bool = False


_KINDS: dict[str, JobKind] = {
    Job.Kind.GENERATE: JobKind(run_generate, generate_outcome),
    Job.Kind.IMPORT: JobKind(run_import_job, import_outcome, remove_upload=True),
    Job.Kind.DELETE_CODES: JobKind(run_delete_or_reset, purge_outcome),
    Job.Kind.RESET_CODES: JobKind(run_delete_or_reset, purge_outcome),
}


# Leases this process held when the database went away, with how often each was resumed.
_interrupted: dict[UUID, tuple[leases.Lease, int]] = {}


def run_job(
    job_id: UUID | str, *, progress: Progress | None = None, worker: str | None = None
) -> None:
    """Run a job to the end if it is queued, or take it over if its worker's lease ran out.

    A job held by a live worker is left alone: the claim is a conditional UPDATE, so a job
    runs in one place at a time even when a worker and a `--wait` command both try.
    """
    job_uuid = uuid_or_none(job_id)
    if job_uuid is None:
        logger.warning("run_job: %r is not a job id", job_id)
        return
    jobs_fail_abandoned(job_id=job_uuid)
    lease = leases.job_claim(job_uuid, worker=worker or leases.worker_name())
    if lease is not None:
        run_claimed(lease, progress=progress)


def run_next_job(*, worker: str, progress: Progress | None = None) -> bool:
    """Resume an interrupted job, claim a queued one or take one over; run it. False if none."""
    jobs_fail_abandoned()
    lease = _resume_interrupted() or _claim_next(worker)
    if lease is None:
        return False
    run_claimed(lease, progress=progress)
    return True


def _claim_next(worker: str) -> leases.Lease | None:
    for job_id in leases.claimable_job_ids():
        lease = leases.job_claim(job_id, worker=worker)
        if lease is not None:
            return lease
    return None


def _resume_interrupted() -> leases.Lease | None:
    while _interrupted:
        job_id, (lease, resumes) = next(iter(_interrupted.items()))
        del _interrupted[job_id]
        if leases.job_resume(lease):
            logger.warning("job %s: resuming after the database came back", job_id)
            _interrupted[job_id] = (lease, resumes + 1)
            return lease
    return None


def interrupted_jobs() -> list[UUID]:
    """Jobs this process stopped running because the database went away."""
    return list(_interrupted)


def run_claimed(lease: leases.Lease, *, progress: Progress | None = None) -> None:
    """Run a job this worker holds the lease of, to its end or until the lease is lost."""
    job = Job.objects.select_related("code_type", "batch").get(pk=lease.job_id)
    kind = _KINDS.get(job.kind)
    metrics.job_reached(kind=job.kind, status=Job.Status.RUNNING)
    logger.info(
        "job %s (%s of %s) running, attempt %s", job.pk, job.kind, job.code_type_name, job.attempts
    )
    try:
        if kind is None:
            raise exc.RedemptionError(f"Jobs of kind {job.kind!r} cannot run here.")
        kind.run(job, lease, progress or no_progress)
    except exc.JobLeaseLostError:
        logger.warning("job %s: another worker took it over; this one stops", job.pk)
        _interrupted.pop(lease.job_id, None)
        return
    except DATABASE_GONE:
        resumes = _interrupted.get(lease.job_id, (lease, 0))[1]
        if resumes < _MAX_RESUMES:
            _interrupted[lease.job_id] = (lease, resumes)
        else:
            _interrupted.pop(lease.job_id, None)
        raise
    except Exception as err:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        _interrupted.pop(lease.job_id, None)
        _finish(job, lease, error=err)
        return
    _interrupted.pop(lease.job_id, None)
    _finish(job, lease)


def _outcome(job: Job, *, complete: bool) -> JobOutcome | None:
    kind = _KINDS.get(job.kind)
    return kind.outcome(job, complete) if kind is not None else None


def _audit_end(job: Job, outcome: JobOutcome | None, *, status: str, at: datetime) -> None:
    if outcome is None:
        return
    audit(
        actor=job_actor(job),
        action=outcome.action,
        code_type_name=job.code_type_name,
        target_id=outcome.target_id,
        details={**outcome.details, "jobId": str(job.pk), "status": status},
        at=at,
    )


def _finish(job: Job, lease: leases.Lease, *, error: BaseException | None = None) -> None:
    """Record how the job ended, and its end audit event, if this lease still holds it."""
    now = timezone.now()
    status = Job.Status.FAILED if error is not None else Job.Status.SUCCEEDED
    fields: dict[str, Any] = {"status": status, "finished_at": now, "lease_expires_at": None}
    with transaction.atomic():
        if error is not None:
            current = Job.objects.get(pk=job.pk)
            fields["errors"] = [*current.errors[: MAX_KEPT_LINE_ERRORS - 1], job_error(error)]
            fields["error_count"] = current.error_count + 1
        if not lease.held().update(**fields):
            return
        job.refresh_from_db()
        _audit_end(job, _outcome(job, complete=error is None), status=status, at=now)
    metrics.job_reached(kind=job.kind, status=status)
    logger.info("job %s (%s of %s) %s", job.pk, job.kind, job.code_type_name, status)
    _after_end(job)


def _after_end(job: Job) -> None:
    kind = _KINDS.get(job.kind)
    if kind is not None and kind.remove_upload and job.upload:
        with contextlib.suppress(OSError):
            default_storage.delete(job.upload)


def jobs_fail_abandoned(*, job_id: UUID | None = None, now: datetime | None = None) -> int:
    """Fail the jobs whose lease ran out MAX_ATTEMPTS times; return how many.

    Run by the periodic work and before each look for work, so such a job ends promptly.
    """
    now = now or timezone.now()
    stale = leases.expired(now).filter(attempts__gte=leases.MAX_ATTEMPTS)
    if job_id is not None:
        stale = stale.filter(pk=job_id)
    failed = 0
    for job in stale.select_related("code_type", "batch")[:100]:
        worker = job.lease_owner or "an unknown worker"
        message = (
            f"The job lost its worker {job.attempts} times (last: {worker}); "
            "it was stopped so that it does not run for ever. Start it again if needed."
        )
        with transaction.atomic():
            won = Job.objects.filter(
                pk=job.pk,
                status=Job.Status.RUNNING,
                attempts=job.attempts,
                lease_owner=job.lease_owner,
                lease_expires_at=job.lease_expires_at,
            ).update(
                status=Job.Status.FAILED,
                finished_at=now,
                lease_expires_at=None,
                errors=[
                    *job.errors[: MAX_KEPT_LINE_ERRORS - 1],
                    job_error(exc.JobLeaseLostError(message), message),
                ],
                error_count=F("error_count") + 1,
            )
            if not won:
                continue
            job.refresh_from_db()
            _audit_end(job, _outcome(job, complete=False), status=Job.Status.FAILED, at=now)
        metrics.job_reached(kind=job.kind, status=Job.Status.FAILED)
        logger.error("job %s failed: %s", job.pk, message)
        _after_end(job)
        failed += 1
    return failed


def job_run_here(
    job_id: UUID | str, *, progress: Progress | None = None, poll_seconds: float = 0.5
) -> Job:
    """Run a job in this process, or wait for the worker that holds it; return it finished.

    While waiting it takes the job over if that worker's lease runs out.
    """
    run_job(job_id, progress=progress)
    job = job_get(job_id)
    while not job.is_finished:
        if progress is not None:
            progress(job.done, job.total)
        time.sleep(poll_seconds)
        run_job(job_id, progress=progress)
        job = job_get(job_id)
    return job
