"""Jobs: who may start them, queueing, running once, progress, lookup and record."""

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from redemption import exceptions as exc
from redemption import tasks
from redemption.actors import Actor
from redemption.models import AuditEvent, Code, Job
from redemption.records import job_record
from redemption.services import bulk
from tests.bulk_helpers import start_and_run
from tests.factories import CodeTypeFactory


@pytest.mark.parametrize("who", ["support", "viewer"])
def test_only_ops_may_run_bulk_operations(request, code_type, who):
    actor = request.getfixturevalue(who)

    with pytest.raises(exc.PermissionDeniedError):
        bulk.codes_generate_inline(actor=actor, code_type_name=code_type.name, quantity=1)
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_generate_start(actor=actor, code_type_name=code_type.name, quantity=1)
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_import_start(actor=actor, code_type_name=code_type.name, upload=b"ABCD1234\n")
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_delete_codes_start(
            actor=actor,
            code_type_name=code_type.name,
            states=["Inactive"],
            confirm_name=code_type.name,
        )
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_reset_codes_start(
            actor=actor,
            code_type_name=code_type.name,
            states=["Redeemed"],
            to_state="Available",
            confirm_name=code_type.name,
        )


def test_starting_a_job_queues_the_task_after_commit(
    ops, code_type, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10)

    assert len(callbacks) == 1
    task = DBTaskResult.objects.get(task_path="redemption.tasks.run_job_task")
    assert task.args_kwargs == {"args": [str(job.pk)], "kwargs": {}}
    assert task.status == "READY"


@pytest.fixture
def queue_down():
    """A task queue that refuses every job, for one test."""

    def refuse(job_id: str) -> None:
        raise ConnectionError("the task queue is down")

    bulk.job_enqueuer_set(refuse)
    yield
    bulk.job_enqueuer_set(tasks.enqueue_job)


def test_a_job_that_cannot_be_queued_is_marked_failed(
    ops, code_type, queue_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10)

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.finished_at is not None
    assert job.errors == [
        {
            "line": None,
            "scanCode": None,
            "code": "JOB_FAILED",
            "message": "The job could not be queued.",
        }
    ]
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_database_worker_runs_a_queued_job(ops_user):
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=Actor.staff(ops_user), code_type_name=ct.name, quantity=25)

    call_command("db_worker", batch=True, startup_delay=False, reload=False, interval=0)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert Code.objects.filter(batch=job.batch).count() == 25
    assert DBTaskResult.objects.get(task_path="redemption.tasks.run_job_task").status == (
        "SUCCESSFUL"
    )


def test_a_job_runs_at_most_once(ops, code_type):
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10)
    bulk.run_job(job.pk)
    first_finish = Job.objects.get(pk=job.pk).finished_at

    bulk.run_job(job.pk)
    bulk.run_job(str(job.pk))

    job.refresh_from_db()
    assert job.finished_at == first_finish
    assert Code.objects.filter(batch=job.batch).count() == 10
    assert AuditEvent.objects.filter(action="codes.generate").count() == 1


def test_job_progress_is_written_per_chunk(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 40
    seen = []
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=100)

    bulk.run_job(job.pk, progress=lambda done, total: seen.append((done, total)))

    assert seen == [(40, 100), (80, 100), (100, 100)]


def test_job_record_has_the_api_shape(ops, code_type):
    job = start_and_run(actor=ops, code_type_name=code_type.name, quantity=3)

    record = job_record(bulk.job_get(str(job.pk)))

    assert set(record) == {
        "jobId",
        "kind",
        "status",
        "total",
        "done",
        "errors",
        "createdAt",
        "finishedAt",
        "resultUrl",
    }
    assert record["jobId"] == str(job.pk)
    assert record["kind"] == "generate"
    assert record["status"] == "succeeded"
    assert record["total"] == record["done"] == 3
    assert record["errors"] == []
    assert record["createdAt"].endswith("Z")
    assert record["finishedAt"].endswith("Z")
    assert record["resultUrl"] == f"/api/v1/server/jobs/{job.pk}/result.csv"


def test_a_queued_or_import_job_has_no_result_url(ops, code_type):
    queued = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=3)
    imported = bulk.job_import_start(actor=ops, code_type_name=code_type.name, upload=b"ABCD1234\n")
    bulk.run_job(imported.pk)

    assert job_record(queued)["resultUrl"] is None
    assert job_record(queued)["finishedAt"] is None
    assert job_record(bulk.job_get(imported.pk))["resultUrl"] is None


@pytest.mark.parametrize("job_id", ["not-a-uuid", "2f1c3e4a-0000-4000-8000-000000000000", None])
def test_an_unknown_job_is_not_found(db, job_id):
    with pytest.raises(exc.JobNotFoundError) as caught:
        bulk.job_get(job_id)
    assert caught.value.code == "JOB_NOT_FOUND"
    assert caught.value.reason_code == 40804
    assert caught.value.http_status == 404


def test_a_job_that_cannot_run_fails(ops, code_type):
    job = bulk.job_import_start(actor=ops, code_type_name=code_type.name, upload=b"ABCD1234\n")
    default_storage.delete(job.upload)

    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.finished_at is not None
    assert job.errors[-1]["message"] == "The uploaded file is missing."
    assert job_record(job)["status"] == "failed"
