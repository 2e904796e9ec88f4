"""Helpers the bulk-work tests share."""

from redemption import exceptions as exc
from redemption.models import Job
from redemption.services import bulk


def fields_of(err: exc.RedemptionError) -> dict:
    return err.details.get("fields", {})


def start_and_run(**kwargs) -> Job:
    job = bulk.job_generate_start(**kwargs)
    bulk.run_job(job.pk)
    job.refresh_from_db()
    return job
