"""Job leases: a job whose worker died is taken over and resumes from its last committed batch.

A worker "dies" here by raising a BaseException out of the progress callback, which nothing
in the runner catches: the batch in flight rolls back and the job stays `running` with the
dead worker's lease, exactly as after a kill -9. Its lease is then made to run out.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from redemption import exceptions as exc
from redemption.models import AuditEvent, Batch, Code, Job
from redemption.services import bulk
from redemption.services.bulk import leases
from tests.factories import CodeFactory, CodeTypeFactory


class Killed(BaseException):
    """The worker process dies (nothing in the runner may catch this)."""


def dies_after(chunks: int):
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) > chunks:
            raise Killed()

    return progress


def run_until_killed(job: Job, *, chunks: int, worker: str = "host-a:101") -> Job:
    with pytest.raises(Killed):
        bulk.run_job(job.pk, progress=dies_after(chunks), worker=worker)
    job.refresh_from_db()
    assert job.status == "running"
    assert job.lease_owner == worker
    return job


def lease_runs_out(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_generate_job_whose_worker_died_is_taken_over_and_ends_exact(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 100
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=1_000)
    job = run_until_killed(job, chunks=3)
    assert job.done == 300
    assert Code.objects.filter(batch=job.batch).count() == 300  # the 4th batch rolled back

    # While the dead worker's lease still runs, nobody takes the job.
    assert bulk.run_next_job(worker="host-b:202") is False

    lease_runs_out(job)
    assert bulk.run_next_job(worker="host-b:202") is True

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.done == job.total == 1_000
    batch_codes = Code.objects.filter(batch=job.batch)
    assert batch_codes.count() == 1_000
    assert batch_codes.values("canonical").distinct().count() == 1_000
    assert job.attempts == 2
    assert [(h["attempt"], h["worker"]) for h in job.holders] == [
        (1, "host-a:101"),
        (2, "host-b:202"),
    ]
    assert job.holders[1]["resumedFrom"] == 300
    assert job.lease_expires_at is None


def test_a_job_start_and_end_are_audited_as_they_happen(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 10
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=30)
    started_while_running = []

    def progress(done: int, total: int) -> None:
        started_while_running.append(AuditEvent.objects.filter(action="job.start").count())

    bulk.run_job(job.pk, progress=progress, worker="host-a:101")

    assert started_while_running == [1, 1, 1]
    start = AuditEvent.objects.get(action="job.start")
    assert start.details == {
        "jobId": str(job.pk),
        "kind": "generate",
        "attempt": 1,
        "worker": "host-a:101",
    }
    assert start.actor_label == ops.label
    end = AuditEvent.objects.get(action="codes.generate")
    assert end.details["status"] == "succeeded"
    assert end.details["complete"] is True
    assert end.details["count"] == 30
    assert end.at >= start.at


def test_a_take_over_is_audited_with_the_worker_it_replaces(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 10
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=30)
    run_until_killed(job, chunks=1)
    lease_runs_out(job)

    bulk.run_next_job(worker="host-b:202")

    starts = AuditEvent.objects.filter(action="job.start").order_by("at", "id")
    assert [(e.details["attempt"], e.details["worker"]) for e in starts] == [
        (1, "host-a:101"),
        (2, "host-b:202"),
    ]
    assert starts[1].details["previousWorker"] == "host-a:101"
    assert starts[1].details["resumedFrom"] == 10
    assert AuditEvent.objects.filter(action="codes.generate").count() == 1


def test_a_worker_that_lost_its_lease_cannot_commit_another_batch(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 50
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=200)
    stale = leases.job_claim(job.pk, worker="host-a:101")
    assert stale is not None
    lease_runs_out(job)
    fresh = leases.job_claim(job.pk, worker="host-b:202")
    assert fresh is not None and fresh.attempt == 2

    # The stale holder wakes up and runs: its first batch finds the lease gone and rolls back.
    bulk.run_claimed(stale)

    assert Code.objects.filter(batch_id=job.batch_id).count() == 0
    job.refresh_from_db()
    assert (job.status, job.lease_owner) == ("running", "host-b:202")
    with pytest.raises(exc.JobLeaseLostError):
        stale.renew(done=1)

    bulk.run_claimed(fresh)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert Code.objects.filter(batch_id=job.batch_id).count() == 200


def test_a_live_lease_is_not_taken_over_and_a_claim_is_won_once(ops, code_type):
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=5)

    first = leases.job_claim(job.pk, worker="host-a:101")
    second = leases.job_claim(job.pk, worker="host-b:202")

    assert first is not None
    assert second is None
    assert Job.objects.get(pk=job.pk).lease_owner == "host-a:101"


def test_an_import_taken_over_never_imports_a_line_twice(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 4
    CodeFactory(code_type=CodeTypeFactory(), scan_code="TAKEN-0001", canonical="TAKEN0001")
    lines = ["scanCode"]
    for i in range(1, 21):
        lines.append(f"IMPORT-{i:04d}")
    lines[3] = "IMPORT-0001"  # line 4 repeats line 2 (before the death)
    lines[5] = "TAKEN-0001"  # line 6: already in the database (before the death)
    lines[6] = "bad code!"  # line 7: invalid (before the death)
    lines[15] = "IMPORT-0002"  # line 16 repeats line 3 (after the death)
    job = bulk.job_import_start(
        actor=ops, code_type_name=code_type.name, upload=("\n".join(lines) + "\n").encode()
    )
    job = run_until_killed(job, chunks=2)
    committed = job.done
    assert 0 < committed < len(lines)

    lease_runs_out(job)
    bulk.run_next_job(worker="host-b:202")

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.done == job.total == len(lines)
    imported = sorted(Code.objects.filter(batch=job.batch).values_list("scan_code", flat=True))
    expected = sorted({f"IMPORT-{i:04d}" for i in range(1, 21)} - {"IMPORT-0003", "IMPORT-0005"})
    expected = sorted(set(expected) - {"IMPORT-0006", "IMPORT-0015"})
    assert imported == expected
    assert job.summary == {
        "imported": len(expected),
        "duplicatesInFile": 2,
        "duplicatesInDatabase": 1,
        "invalid": 1,
    }
    assert job.error_count == 4
    assert sorted(e["line"] for e in job.errors) == [4, 6, 7, 16]
    assert Batch.objects.get(pk=job.batch_id).quantity == len(expected)
    event = AuditEvent.objects.get(action="codes.import")
    assert event.details["imported"] == len(expected)
    assert event.details["errors"] == 4


@pytest.mark.parametrize("kind", ["reset", "delete"])
def test_a_reset_or_delete_taken_over_finishes_and_counts_each_code_once(
    ops, code_type, settings, kind
):
    settings.JOB_BATCH_SIZE = 5
    for i in range(23):
        CodeFactory(code_type=code_type, state="Available" if i % 2 else "Inactive")
    states = ["Inactive", "Available"]
    if kind == "reset":
        # The reset codes still match the job's states: only the checkpoint keeps them from
        # being counted again.
        job = bulk.job_reset_codes_start(
            actor=ops,
            code_type_name=code_type.name,
            states=states,
            to_state="Available",
            confirm_name=code_type.name,
        )
    else:
        job = bulk.job_delete_codes_start(
            actor=ops, code_type_name=code_type.name, states=states, confirm_name=code_type.name
        )
    job = run_until_killed(job, chunks=2)  # the third batch committed, then the worker died
    assert job.done == 15

    lease_runs_out(job)
    bulk.run_next_job(worker="host-b:202")

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.done == job.total == 23
    action = "codes.reset_all" if kind == "reset" else "codes.delete_all"
    event = AuditEvent.objects.get(action=action)
    assert event.details["counts"] == {"Inactive": 12, "Available": 11}
    assert event.details["total"] == 23
    left = Counter(Code.objects.filter(code_type=code_type).values_list("state", flat=True))
    assert left == ({"Available": 23} if kind == "reset" else {})
    if kind == "reset":
        assert set(Code.objects.filter(code_type=code_type).values_list("version", flat=True)) == {
            2
        }


def test_a_job_that_lost_three_leases_fails_with_the_reason(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 10
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=100)
    for n in range(1, 4):
        run_until_killed(job, chunks=1, worker=f"host-{n}:{n}")
        lease_runs_out(job)

    assert bulk.run_next_job(worker="host-4:4") is False

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.attempts == 3
    assert job.finished_at is not None
    assert "lost its worker 3 times (last: host-3:3)" in job.errors[-1]["message"]
    assert job.errors[-1]["code"] == "JOB_FAILED"
    end = AuditEvent.objects.get(action="codes.generate")
    assert end.details["status"] == "failed"
    assert end.details["complete"] is False
    assert end.details["count"] == Code.objects.filter(batch=job.batch).count() == 30


def test_waiting_for_a_job_takes_it_over_when_its_worker_died(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 10
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=50)
    run_until_killed(job, chunks=1)
    lease_runs_out(job)

    finished = bulk.job_run_here(job.pk, poll_seconds=0.01)

    assert finished.status == "succeeded"
    assert Code.objects.filter(batch=job.batch).count() == 50
