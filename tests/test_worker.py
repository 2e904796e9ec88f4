"""`manage.py db_worker` is the whole worker: jobs, take-overs, the periodic work, outages."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command, get_commands
from django.db import OperationalError
from django.utils import timezone

from redemption import worker as worker_module
from redemption.actors import Actor
from redemption.db import counts
from redemption.models import Attempt, Code, Job, PeriodicRun
from redemption.services import bulk, housekeeping
from redemption.worker import Housekeeper, Worker
from tests.factories import CodeFactory, CodeTypeFactory


def make_worker(**overrides) -> Worker:
    options = {
        "name": "host-w:1",
        "queue_names": ["default"],
        "interval": 0,
        "batch": True,
        "backend_name": "default",
        "startup_delay": False,
        "max_tasks": None,
        "worker_id": "test-worker",
        "excluded_queue_names": [],
    }
    options.update(overrides)
    return Worker(**options)


def stale_attempt() -> Code:
    past = timezone.now() - timedelta(minutes=10)
    code = CodeFactory(state="InProgress", redeemed_by_profile_id="p-1", current_attempt=1)
    Attempt.objects.create(
        code=code, attempt=1, profile_id="p-1", started_at=past, deadline_at=past
    )
    return code


def test_db_worker_is_this_projects_command():
    assert get_commands()["db_worker"] == "redemption"


def test_one_runner_wins_each_slot_of_the_periodic_work(db, settings):
    settings.SWEEP_INTERVAL_SECONDS = 60
    now = timezone.now()
    slot = housekeeping.periodic_slot(now)

    winners = [
        housekeeping.periodic_claim(name="chores", slot=slot, runner=f"w-{n}", now=now)
        for n in range(3)
    ]
    next_slot = [
        housekeeping.periodic_claim(name="chores", slot=slot + 1, runner=f"w-{n}", now=now)
        for n in (2, 1)
    ]

    assert winners == [True, False, False]
    assert next_slot == [True, False]
    assert PeriodicRun.objects.get(name="chores").runner == "w-2"


def test_the_housekeeper_ticks_often_enough_for_the_sweep_and_the_count_fold(settings):
    settings.SWEEP_INTERVAL_SECONDS = 60
    settings.COUNT_FOLD_SECONDS = 5
    assert worker_module.housekeeping_tick() == 1.25
    settings.COUNT_FOLD_SECONDS = 600
    assert worker_module.housekeeping_tick() == 5.0
    settings.SWEEP_INTERVAL_SECONDS = 1
    assert worker_module.housekeeping_tick() == 0.5


def test_a_slot_of_zero_seconds_is_one_second_not_the_sweep_interval(settings):
    settings.SWEEP_INTERVAL_SECONDS = 60
    now = datetime.fromtimestamp(1_800_000_007, UTC)
    assert housekeeping.periodic_slot(now, 0) == 1_800_000_007
    assert housekeeping.periodic_slot(now, 5) == 360_000_001
    assert housekeeping.periodic_slot(now) == 30_000_000


def test_the_periodic_work_runs_once_per_slot_whoever_offers(db, settings):
    settings.SWEEP_INTERVAL_SECONDS = 60
    code = stale_attempt()
    minute = int(timezone.now().timestamp()) // 60 * 60
    now = datetime.fromtimestamp(minute + 10, UTC)

    first = housekeeping.periodic_run(runner="w-1", now=now)
    second = housekeeping.periodic_run(runner="w-2", now=now + timedelta(seconds=30))
    third = housekeeping.periodic_run(runner="w-2", now=now + timedelta(seconds=60))

    assert first is not None and first.timed_out == 1
    assert second is None
    assert third is not None and third.timed_out == 0
    code.refresh_from_db()
    assert code.state == "Failed"
    run = PeriodicRun.objects.get(name=housekeeping.HOUSEKEEPING)
    assert run.finished_at is not None and run.last_error == ""


@pytest.mark.django_db(transaction=True)
def test_a_failed_periodic_run_does_not_stop_the_next_one(settings, monkeypatch, caplog):
    settings.SWEEP_INTERVAL_SECONDS = 1
    code = stale_attempt()
    real_sweep = housekeeping.sweep
    calls = []

    def sweep_failing_once(*, now=None):
        calls.append(now)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_sweep(now=now)

    monkeypatch.setattr(housekeeping, "sweep", sweep_failing_once)
    keeper = Housekeeper("host-w:1")
    start = timezone.now().replace(microsecond=0)

    with caplog.at_level(logging.ERROR, logger="redemption.worker"):
        keeper.offer(now=start)
        keeper.offer(now=start + timedelta(seconds=1))  # the next slot

    assert len(calls) == 2
    assert "periodic work failed" in caplog.text
    code.refresh_from_db()
    assert code.state == "Failed"


@pytest.mark.django_db(transaction=True)
def test_a_failing_count_fold_does_not_stop_the_sweep(settings, monkeypatch, caplog):
    settings.SWEEP_INTERVAL_SECONDS = 60
    code = stale_attempt()

    def fold_failing(**kwargs):
        raise OperationalError("canceling statement due to lock timeout")

    monkeypatch.setattr(housekeeping, "count_fold_run", fold_failing)
    with caplog.at_level(logging.ERROR, logger="redemption.worker"):
        Housekeeper("host-w:1").offer()

    assert "periodic work failed" in caplog.text
    code.refresh_from_db()
    assert code.state == "Failed"


def test_the_sweep_fails_jobs_that_lost_their_lease_three_times(ops, code_type):
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=5)
    Job.objects.filter(pk=job.pk).update(
        status="running",
        attempts=3,
        lease_owner="gone:9",
        lease_expires_at=timezone.now() - timedelta(seconds=5),
    )

    report = housekeeping.sweep()

    assert report.jobs_failed == 1
    assert Job.objects.get(pk=job.pk).status == "failed"


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_queued_job_and_the_periodic_work(ops_user, settings):
    settings.SWEEP_INTERVAL_SECONDS = 60
    code = stale_attempt()
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=Actor.staff(ops_user), code_type_name=ct.name, quantity=7)

    call_command("db_worker", batch=True, startup_delay=False, reload=False, interval=0)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.lease_owner == bulk.worker_name()
    code.refresh_from_db()
    assert code.state == "Failed"
    assert PeriodicRun.objects.get(name=housekeeping.HOUSEKEEPING).runner == bulk.worker_name()
    # The count fold too, where counts are kept as deltas (PostgreSQL); SQLite has none to fold.
    folds = PeriodicRun.objects.filter(name=housekeeping.COUNT_FOLD)
    if counts.uses_triggers():
        assert folds.get().runner == bulk.worker_name()
    else:
        assert not folds.exists()


@pytest.mark.django_db(transaction=True)
def test_the_worker_takes_over_a_job_whose_lease_ran_out(ops_user, settings):
    settings.JOB_BATCH_SIZE = 10
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=Actor.staff(ops_user), code_type_name=ct.name, quantity=40)
    Job.objects.filter(pk=job.pk).update(
        status="running",
        attempts=1,
        lease_owner="dead-host:1",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        holders=[{"attempt": 1, "worker": "dead-host:1", "at": "2026-01-01T00:00:00.000Z"}],
    )

    make_worker().run()

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.attempts == 2
    assert Code.objects.filter(batch=job.batch).count() == 40


@pytest.mark.django_db(transaction=True)
def test_the_worker_waits_out_a_database_outage_and_carries_on(
    ops_user, settings, monkeypatch, caplog
):
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=Actor.staff(ops_user), code_type_name=ct.name, quantity=9)
    w = make_worker()
    real_turn = w.turn
    outage = {"turns": 0, "probes": 0}

    def turn_during_outage():
        outage["turns"] += 1
        if outage["turns"] <= 2:
            raise OperationalError('connection to server at "127.0.0.1" failed: refused')
        return real_turn()

    def database_answers():
        outage["probes"] += 1
        return outage["probes"] >= 3  # down for two probes, then back

    monkeypatch.setattr(w, "turn", turn_during_outage)
    monkeypatch.setattr(worker_module, "database_answers", database_answers)
    monkeypatch.setattr(worker_module.time, "sleep", lambda s: None)

    with caplog.at_level(logging.WARNING, logger="redemption.worker"):
        w.run()  # batch mode: returns once there is no work left; must not raise

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert "database unreachable" in caplog.text
    assert "database answers again" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_job_interrupted_by_an_outage_is_resumed_by_its_own_worker(ops_user, settings):
    settings.JOB_BATCH_SIZE = 10
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=Actor.staff(ops_user), code_type_name=ct.name, quantity=50)
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise OperationalError("the database went away")

    with pytest.raises(OperationalError):
        bulk.run_job(job.pk, progress=progress, worker="host-w:1")
    assert bulk.interrupted_jobs() == [job.pk]

    # The database is back: the same worker resumes its own lease, not as a lost lease.
    assert bulk.run_next_job(worker="host-w:1") is True

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.attempts == 1
    assert Code.objects.filter(batch=job.batch).count() == 50
    assert bulk.interrupted_jobs() == []
