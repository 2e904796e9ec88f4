"""Run the periodic housekeeping once (timeouts first); or schedule it to repeat."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from redemption.services import housekeeping
from redemption.tasks import schedule_sweep, sweep_pending


class Command(BaseCommand):
    help = (
        "Sweep stale InProgress attempts to Failed once, and do the rest of the periodic "
        "housekeeping (prune old failed-redeem and idempotency records, fold count deltas). "
        "With --schedule, queue the periodic sweep task instead (it re-queues itself every "
        "SWEEP_INTERVAL_SECONDS; running this again does not start a second chain)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--schedule", action="store_true", help="Queue the self-rescheduling sweep task."
        )

    def handle(self, *args: Any, schedule: bool, **options: Any) -> None:
        if not schedule:
            report = housekeeping.sweep()
            self.stdout.write(f"Swept {report.timed_out} timed-out attempt(s) to Failed.")
            self.stdout.write(
                f"Pruned {report.failures_pruned} failed-redeem and "
                f"{report.idempotency_pruned} idempotency record(s); "
                f"{report.count_rows} count row(s) after folding."
            )
            return
        if schedule_sweep(delay_seconds=0):
            self.stdout.write(
                f"Scheduled the timeout sweep every {settings.SWEEP_INTERVAL_SECONDS} s "
                "(run by manage.py db_worker)."
            )
        elif sweep_pending():
            self.stdout.write("The timeout sweep is already scheduled.")
        else:
            self.stdout.write(
                "The task backend cannot run tasks later; run `sweep` from cron instead."
            )
