"""django.tasks entry points: thin wrappers that call the services.

The only module that knows the task framework. The services never import it: at start-up
`RedemptionConfig.ready` hands `enqueue_job` to the bulk services, which queue jobs through it.
"""

from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.tasks.base import TaskResultStatus
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from redemption.services import bulk, housekeeping


@task
def run_job_task(job_id: str) -> None:
    """Run one bulk job (generate, import, delete-all, reset-all)."""
    bulk.run_job(job_id)


def enqueue_job(job_id: str) -> None:
    """Queue the task that runs one job."""
    run_job_task.enqueue(job_id)


def jobs_run_in_a_worker() -> bool:
    """Whether queued jobs are picked up by `manage.py db_worker` (the database backend)."""
    return isinstance(run_job_task.get_backend(), DatabaseBackend)


@task
def sweep_timeouts_task() -> int:
    """Do the periodic housekeeping and queue the next run; return how many attempts timed out."""
    try:
        return housekeeping.sweep().timed_out
    finally:
        schedule_sweep()


def sweep_pending() -> bool:
    """Tell whether a sweep is already waiting in the database queue."""
    backend = sweep_timeouts_task.get_backend()
    if not isinstance(backend, DatabaseBackend):
        return False
    return DBTaskResult.objects.filter(
        task_path=sweep_timeouts_task.module_path,
        backend_name=backend.alias,
        status=TaskResultStatus.READY,
    ).exists()


def schedule_sweep(*, delay_seconds: int | None = None) -> bool:
    """Queue a sweep `delay_seconds` from now (default SWEEP_INTERVAL_SECONDS).

    Returns False, queueing nothing, when a sweep is already waiting (so repeated
    `sweep --schedule` calls keep a single chain) or when the task backend cannot
    run tasks later (the immediate backend would otherwise recurse forever).
    """
    if not sweep_timeouts_task.get_backend().supports_defer or sweep_pending():
        return False
    delay = settings.SWEEP_INTERVAL_SECONDS if delay_seconds is None else delay_seconds
    run_after = timezone.now() + timedelta(seconds=delay)
    sweep_timeouts_task.using(run_after=run_after).enqueue()
    return True
