"""The periodic housekeeping: one sweep, run by the task and by `manage.py sweep`."""

import io
from collections import defaultdict
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from redemption.db import counts
from redemption.models import (
    STATE_ORDER,
    Attempt,
    Code,
    IdempotencyRecord,
    RedeemFailure,
    StateCountDelta,
)
from redemption.services import housekeeping
from redemption.tasks import sweep_timeouts_task
from tests.factories import CodeFactory, CodeTypeFactory


def test_the_sweep_task_fails_stale_attempts_once_and_queues_no_follow_up(db):
    # The workers run the periodic work themselves now: a task that re-queues itself is a
    # chain that one failure breaks for good. The task is kept so old queued runs drain.
    past = timezone.now() - timedelta(minutes=10)
    code = CodeFactory(state="InProgress", redeemed_by_profile_id="p-1", current_attempt=1)
    Attempt.objects.create(
        code=code, attempt=1, profile_id="p-1", started_at=past, deadline_at=past
    )

    assert sweep_timeouts_task.call() == 1
    assert sweep_timeouts_task.call() == 0

    code.refresh_from_db()
    assert code.state == "Failed"
    assert not DBTaskResult.objects.filter(task_path="redemption.tasks.sweep_timeouts_task")


@pytest.fixture
def chores(db) -> Code:
    """One of each kind of periodic work, due; returns the code whose attempt timed out."""
    now = timezone.now()
    past = now - timedelta(minutes=10)
    stale = CodeFactory(state="InProgress", redeemed_by_profile_id="p-1", current_attempt=1)
    Attempt.objects.create(
        code=stale, attempt=1, profile_id="p-1", started_at=past, deadline_at=past
    )
    ct = CodeTypeFactory()
    for _ in range(3):  # one statement each: three count deltas for one (type, state)
        CodeFactory(code_type=ct)
    RedeemFailure.objects.create(bucket="profile:old", at=now - timedelta(hours=1))
    RedeemFailure.objects.create(bucket="profile:new", at=now)
    IdempotencyRecord.objects.create(
        credential="c", key="old", request_hash="h", created_at=now - timedelta(days=2)
    )
    IdempotencyRecord.objects.create(credential="c", key="new", request_hash="h", created_at=now)
    return stale


def _counted_from_rows() -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATE_ORDER, 0))
    rows = Code.objects.filter(is_shared_anchor=False).values("code_type_id", "state")
    for row in rows.annotate(n=Count("*")).order_by():
        result[row["code_type_id"]][row["state"]] = row["n"]
    return dict(result)


ENTRY_POINTS = {
    "task": lambda: sweep_timeouts_task.call(),
    "command": lambda: call_command("sweep", stdout=io.StringIO()),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_the_task_and_the_command_do_all_the_periodic_work(chores, entry):
    ENTRY_POINTS[entry]()

    chores.refresh_from_db()
    assert chores.state == "Failed"
    assert list(RedeemFailure.objects.values_list("bucket", flat=True)) == ["profile:new"]
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    pairs = StateCountDelta.objects.values("code_type_id", "state").distinct().count()
    assert StateCountDelta.objects.count() == pairs  # folded: one row per (type, state)
    assert {k: v for k, v in counts.by_type().items() if any(v.values())} == _counted_from_rows()


def test_the_sweep_reports_what_it_did(chores):
    report = housekeeping.sweep()

    assert (report.timed_out, report.failures_pruned, report.idempotency_pruned) == (1, 1, 1)
    assert report.count_rows == StateCountDelta.objects.count()
    assert housekeeping.sweep() == housekeeping.SweepReport(
        timed_out=0, failures_pruned=0, idempotency_pruned=0, count_rows=report.count_rows
    )


def test_the_command_says_what_it_did(chores):
    out = io.StringIO()

    call_command("sweep", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "Swept 1 timed-out attempt(s) to Failed."
    assert lines[1].startswith("Pruned 1 failed-redeem and 1 idempotency record(s);")
