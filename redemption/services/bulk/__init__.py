"""Bulk work on a code type: generate, import, export, delete-all and reset-all, run as jobs.

Jobs are rows in `Job` (`jobs`); `run_job` (`runner`) is what the background task executes.
Work happens in chunks of `settings.JOB_BATCH_SIZE`, each chunk in its own transaction, with
progress written to the job row as it goes, so memory stays flat whatever the quantity.
Inserts never ask "does this code exist?" per code: the unique index on `Code.canonical`
settles collisions (`redemption.db.code_inserts`), and generation tops up until the batch holds
exactly the requested quantity.
"""

from redemption.services.bulk.export import EXPORT_HEADER, export_rows, job_result_rows
from redemption.services.bulk.generate import (
    batch_fill,
    codes_generate_inline,
    drawn_chunks,
    job_generate_start,
    random_candidates,
)
from redemption.services.bulk.imports import job_import_start
from redemption.services.bulk.jobs import Progress, job_enqueuer_set, job_get
from redemption.services.bulk.leases import MAX_ATTEMPTS, Lease, worker_name
from redemption.services.bulk.options import already_issued
from redemption.services.bulk.purge import (
    delete_reset_preview,
    job_delete_codes_start,
    job_reset_codes_start,
)
from redemption.services.bulk.runner import (
    interrupted_jobs,
    job_run_here,
    jobs_fail_abandoned,
    run_claimed,
    run_job,
    run_next_job,
)

__all__ = [
    "EXPORT_HEADER",
    "MAX_ATTEMPTS",
    "Lease",
    "Progress",
    "already_issued",
    "batch_fill",
    "codes_generate_inline",
    "delete_reset_preview",
    "drawn_chunks",
    "export_rows",
    "interrupted_jobs",
    "job_delete_codes_start",
    "job_enqueuer_set",
    "job_generate_start",
    "job_get",
    "job_import_start",
    "job_reset_codes_start",
    "job_result_rows",
    "job_run_here",
    "jobs_fail_abandoned",
    "random_candidates",
    "run_claimed",
    "run_job",
    "run_next_job",
    "worker_name",
]
