"""Jobs: list, live progress, errors and result download."""

from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.utils.dateparse import parse_datetime

from redemption import exceptions as exc
from redemption import selectors
from redemption.csv_out import csv_download
from redemption.filters import JobFilter
from redemption.models import Job
from redemption.records import ts
from redemption.services import bulk
from redemption.tables import JobTable
from redemption.views._common import (
    code_reader,
    newest_first,
    ops_required,
    page,
    viewer_required,
)

NAV = "jobs"
SHOWN_ERRORS = 1000
PER_PAGE = 25


def _job_or_404(job_id: UUID) -> Job:
    try:
        return bulk.job_get(job_id)
    except exc.JobNotFoundError:
        raise Http404("No job has that id.") from None


@viewer_required
def job_list(request: HttpRequest) -> HttpResponse:
    """Jobs newest first, paged by key (never counted, never OFFSET)."""
    job_filter = JobFilter(request.GET, queryset=selectors.jobs_all())
    qs = job_filter.qs if job_filter.is_valid() else Job.objects.none()
    keyset = newest_first(request, qs, kind="jobs", time_field="created_at", per_page=PER_PAGE)
    if keyset is None:
        return redirect("redemption:job_list")
    return page(
        request,
        "redemption/job_list.html",
        {"table": JobTable(keyset.rows), "filter": job_filter, "keyset": keyset},
        nav=NAV,
    )


def job_status_payload(job: Job) -> dict[str, object]:
    return {
        "jobId": str(job.pk),
        "status": job.status,
        "done": job.done,
        "total": job.total,
        "percent": job.percent,
        "finished": job.is_finished,
        "errorCount": job.error_count,
        "finishedAt": ts(job.finished_at),
    }


def job_holders(job: Job) -> list[dict[str, Any]]:
    """The workers that held the job, oldest first, each with when its hold began and ended."""
    rows = [h for h in job.holders if isinstance(h, dict)] if isinstance(job.holders, list) else []
    shown: list[dict[str, Any]] = []
    for n, holder in enumerate(rows):
        later = rows[n + 1] if n + 1 < len(rows) else None
        shown.append(
            {
                "attempt": holder.get("attempt"),
                "worker": holder.get("worker", ""),
                "since": parse_datetime(str(holder.get("at", ""))),
                "resumed_from": holder.get("resumedFrom"),
                "taken_over_at": parse_datetime(str(later.get("at", ""))) if later else None,
                "current": later is None and not job.is_finished,
            }
        )
    return shown


@viewer_required
def job_detail(request: HttpRequest, job_id: UUID) -> HttpResponse:
    job = _job_or_404(job_id)
    errors = job.errors[:SHOWN_ERRORS] if isinstance(job.errors, list) else []
    reader = code_reader(request)
    if reader.masks_live:
        scans = [e.get("scanCode") for e in errors if isinstance(e, dict)]
        reader = reader.with_revealed(selectors.codes_shown_in_full(s for s in scans if s))
        errors = [
            {**e, "scanCode": reader.text(e.get("scanCode"))} if isinstance(e, dict) else e
            for e in errors
        ]
    return page(
        request,
        "redemption/job_detail.html",
        {
            "job": job,
            "errors": errors,
            "more_errors": max(0, job.error_count - len(errors)),
            "has_result": job.kind == Job.Kind.GENERATE and job.status == Job.Status.SUCCEEDED,
            "holders": job_holders(job),
            "max_attempts": bulk.MAX_ATTEMPTS,
        },
        nav=NAV,
    )


@viewer_required
def job_status(request: HttpRequest, job_id: UUID) -> JsonResponse:
    """Progress of one job, polled by static/redemption/portal.js."""
    response = JsonResponse(job_status_payload(_job_or_404(job_id)))
    response["Cache-Control"] = "no-store"
    return response


@ops_required
def job_result(request: HttpRequest, job_id: UUID) -> HttpResponseBase:
    """The generated codes of a finished generation job, as CSV."""
    job = _job_or_404(job_id)
    if job.status != Job.Status.SUCCEEDED:
        raise Http404("The job has no result yet.")
    return csv_download(bulk.job_result_rows(job), f"{job.code_type_name or 'job'}-{job.pk}.csv")
