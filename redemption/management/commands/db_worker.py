"""`manage.py db_worker`: the whole background worker (jobs, leases, periodic work, outages).

It replaces django-tasks-db's command of the same name (redemption is listed before
django_tasks_db in INSTALLED_APPS, and the first app listed wins a command name) and keeps
its options, so scripts and units written for that command run this one unchanged.
"""

import os
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands.db_worker import Command as TasksDbWorkerCommand

from redemption.services import bulk
from redemption.worker import Worker


class Command(TasksDbWorkerCommand):
    help = (
        "Run the background worker: queued jobs (taking over any whose worker stopped "
        "renewing its lease), django-tasks-db's queue, and the periodic work (one worker "
        "runs it each SWEEP_INTERVAL_SECONDS). It waits out database outages instead of "
        "exiting."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--no-jobs",
            action="store_false",
            dest="take_jobs",
            help="Run only the tasks queue and the periodic work, never a bulk job.",
        )

    def handle(  # type: ignore[override]
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        take_jobs: bool = True,
        **options: Any,
    ) -> None:
        self.configure_logging(verbosity)
        if reload and batch:
            reload = False
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = Worker(
            name=bulk.worker_name(),
            take_jobs=take_jobs,
            queue_names=queue_names,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded,
        )
        if reload:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
