"""Run a queued job: claim it once, dispatch on its kind, record success or the failure."""

import logging
import time
from collections.abc import Callable
from uuid import UUID

from django.utils import timezone

from redemption import exceptions as exc
from redemption import metrics
from redemption.ids import uuid_or_none
from redemption.models import Job
from redemption.services.bulk.generate import run_generate
from redemption.services.bulk.imports import run_import
from redemption.services.bulk.jobs import (
    MAX_KEPT_LINE_ERRORS,
    Progress,
    job_error,
    job_get,
    no_progress,
)
from redemption.services.bulk.purge import run_delete_or_reset

logger = logging.getLogger(__name__)

_RUNNERS: dict[str, Callable[[Job, Progress], None]] = {
    Job.Kind.GENERATE: run_generate,
    Job.Kind.IMPORT: run_import,
    Job.Kind.DELETE_CODES: run_delete_or_reset,
    Job.Kind.RESET_CODES: run_delete_or_reset,
}


def run_job(job_id: UUID | str, *, progress: Progress | None = None) -> None:
    """Run a queued job to the end; a job another process already claimed is left alone.

    The claim is a conditional UPDATE (queued -> running), so a job runs at most once even
    when a worker and a `--wait` command both try.
    """
    job_uuid = uuid_or_none(job_id)
    if job_uuid is None:
        logger.warning("run_job: %r is not a job id", job_id)
        return
    claimed = Job.objects.filter(pk=job_uuid, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = Job.objects.select_related("code_type", "batch").get(pk=job_uuid)
    metrics.job_reached(kind=job.kind, status=Job.Status.RUNNING)
    logger.info("job %s (%s of %s) started", job.pk, job.kind, job.code_type_name)
    runner = _RUNNERS.get(job.kind)
    try:
        if runner is None:
            raise exc.RedemptionError(f"Jobs of kind {job.kind!r} cannot run here.")
        runner(job, progress or no_progress)
    except Exception as err:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        failed = Job.objects.get(pk=job.pk)
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED,
            finished_at=timezone.now(),
            errors=[*failed.errors[: MAX_KEPT_LINE_ERRORS - 1], job_error(err)],
            error_count=failed.error_count + 1,
        )
        metrics.job_reached(kind=job.kind, status=Job.Status.FAILED)
        return
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, finished_at=timezone.now())
    metrics.job_reached(kind=job.kind, status=Job.Status.SUCCEEDED)
    logger.info("job %s (%s of %s) succeeded", job.pk, job.kind, job.code_type_name)


def job_run_here(
    job_id: UUID | str, *, progress: Progress | None = None, poll_seconds: float = 0.5
) -> Job:
    """Run a job in this process, or wait for the worker that already claimed it; return it."""
    run_job(job_id, progress=progress)
    job = job_get(job_id)
    while not job.is_finished:
        if progress is not None:
            progress(job.done, job.total)
        time.sleep(poll_seconds)
        job = job_get(job_id)
    return job
