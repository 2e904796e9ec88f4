"""Job rows: create one and queue it after commit, look one up, record who started it.

The services do not know the task framework. `redemption.tasks` owns the task that runs a
job and hands its enqueue function to `job_enqueuer_set` when the app is ready; a job whose
task cannot be queued is marked failed instead of staying queued for ever.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from redemption import codes, metrics
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.ids import uuid_or_none
from redemption.models import Batch, CodeType, Job

logger = logging.getLogger(__name__)

MAX_KEPT_LINE_ERRORS = 1_000

Progress = Callable[[int, int], None]
Enqueuer = Callable[[str], object]

_enqueuer: Enqueuer | None = None


@dataclass(frozen=True)
class JobOutcome:
    """What a job did, as its end audit event records it."""

    action: str
    target_id: str
    details: dict[str, Any]


def job_enqueuer_set(enqueue: Enqueuer | None) -> None:
    """Use `enqueue(job_id)` to queue the task that runs a job (set once, at app start)."""
    global _enqueuer
    _enqueuer = enqueue


def no_progress(done: int, total: int) -> None:
    return None


def actor_params(actor: Actor) -> dict[str, str]:
    """The actor as stored in a job's params, so the runner can audit in their name."""
    return {"kind": actor.kind, "id": actor.id, "label": actor.label[:200]}


def job_actor(job: Job) -> Actor:
    """The actor who started the job."""
    a = job.params.get("actor") or {}
    return Actor(
        kind=a.get("kind", "system"), id=a.get("id", ""), label=a.get("label", job.created_by)
    )


def new_batch(
    *,
    ct: CodeType,
    kind: str,
    actor: Actor,
    now: datetime,
    quantity: int = 0,
    shape: codes.CodeShape | None = None,
) -> Batch:
    """Create the batch a generation or import fills."""
    fields: dict[str, Any] = {}
    if shape is not None:
        fields = {
            "algorithm": shape.algorithm,
            "prefix": shape.prefix,
            "length": shape.length,
            "include_check": shape.include_check,
        }
    return Batch.objects.create(
        code_type=ct,
        kind=kind,
        quantity=quantity,
        created_by=actor.label[:200],
        created_at=now,
        **fields,
    )


def job_create(
    *,
    actor: Actor,
    ct: CodeType,
    kind: str,
    params: dict[str, Any],
    now: datetime,
    **fields: Any,
) -> Job:
    """Create a queued job and queue its task once the surrounding transaction commits."""
    job = Job.objects.create(
        kind=kind,
        code_type=ct,
        code_type_name=ct.name,
        params={**params, "actor": actor_params(actor)},
        created_by=actor.label[:200],
        created_at=now,
        **fields,
    )
    job_id = str(job.pk)
    transaction.on_commit(lambda: _enqueue(job_id, kind))
    return job


def _enqueue(job_id: str, kind: str) -> None:
    metrics.job_reached(kind=kind, status=Job.Status.QUEUED)
    try:
        if _enqueuer is None:
            raise RuntimeError("No task queue is set up for jobs.")
        _enqueuer(job_id)
    except Exception as err:
        logger.exception("could not queue job %s", job_id)
        metrics.job_reached(kind=kind, status=Job.Status.FAILED)
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.FAILED,
            finished_at=timezone.now(),
            errors=[job_error(err, "The job could not be queued.")],
            error_count=1,
        )


def job_error(err: BaseException, message: str | None = None) -> dict[str, Any]:
    """The error entry a job records when it stops on `err`."""
    if isinstance(err, exc.RedemptionError):
        return {"line": None, "scanCode": None, "code": err.code, "message": err.message}
    return {
        "line": None,
        "scanCode": None,
        "code": "JOB_FAILED",
        "message": message or f"The job stopped: {type(err).__name__}: {str(err)[:300]}",
    }


def job_get(job_id: UUID | str) -> Job:
    """Return the job with that id (with its type and batch) or raise JobNotFoundError."""
    job_uuid = uuid_or_none(job_id)
    job = None
    if job_uuid is not None:
        job = Job.objects.select_related("code_type", "batch").filter(pk=job_uuid).first()
    if job is None:
        raise exc.JobNotFoundError(details={"jobId": str(job_id)})
    return job
