"""django.tasks entry points: thin wrappers that call the services.

The only module that knows the task framework. The services never import it: at start-up
`RedemptionConfig.ready` hands `enqueue_job` to the bulk services, which queue jobs through it.
"""

from django.tasks import task
from django_tasks_db.backend import DatabaseBackend

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
    """Do the periodic housekeeping once; return how many attempts timed out.

    It no longer queues a follow-up: every `manage.py db_worker` runs the periodic work
    itself. Kept so that runs queued by an earlier version still drain.
    """
    return housekeeping.sweep().timed_out
