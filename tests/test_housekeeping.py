"""The periodic housekeeping: the sweep task and the sweep_timeouts command."""

from datetime import timedelta

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from redemption.models import Attempt
from redemption.tasks import sweep_timeouts_task
from tests.factories import CodeFactory


def test_the_sweep_task_fails_stale_attempts_and_keeps_one_follow_up_queued(db, settings):
    settings.SWEEP_INTERVAL_SECONDS = 90
    past = timezone.now() - timedelta(minutes=10)
    code = CodeFactory(state="InProgress", redeemed_by_profile_id="p-1", current_attempt=1)
    Attempt.objects.create(
        code=code, attempt=1, profile_id="p-1", started_at=past, deadline_at=past
    )

    assert sweep_timeouts_task.call() == 1
    sweep_timeouts_task.call()

    code.refresh_from_db()
    assert code.state == "Failed"
    queued = DBTaskResult.objects.filter(task_path="redemption.tasks.sweep_timeouts_task")
    assert queued.count() == 1
    delay = queued.get().run_after - timezone.now()
    assert timedelta(seconds=80) < delay <= timedelta(seconds=90)
