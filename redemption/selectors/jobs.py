"""Reads about background jobs (one job by id: services.bulk.job_get)."""

from django.db.models import QuerySet

from redemption.models import (
    Job,
)


def jobs_all() -> QuerySet[Job]:
    return Job.objects.select_related("code_type").order_by("-created_at")


def recent_jobs(*, limit: int = 8) -> list[Job]:
    return list(jobs_all()[:limit])
