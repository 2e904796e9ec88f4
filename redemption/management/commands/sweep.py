"""Run the periodic housekeeping once (timeouts first); `manage.py db_worker` repeats it."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from redemption.services import housekeeping


class Command(BaseCommand):
    help = (
        "Sweep stale InProgress attempts to Failed once, and do the rest of the periodic "
        "housekeeping (prune old failed-redeem and idempotency records, fold count deltas, "
        "fail jobs that lost their worker too often). Every running `manage.py db_worker` "
        "already does this every SWEEP_INTERVAL_SECONDS; --schedule is kept for old scripts "
        "and only says so."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--schedule",
            action="store_true",
            help="Do nothing: db_worker runs the periodic work (kept for old scripts).",
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
        self.stdout.write(
            f"Nothing to schedule: every running `manage.py db_worker` does the periodic work "
            f"every {settings.SWEEP_INTERVAL_SECONDS} s."
        )
