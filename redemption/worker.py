"""The background worker that `manage.py db_worker` runs: the whole of it.

Each turn of its loop it resumes a job it had to drop when the database went away, claims a
queued job or takes over one whose lease ran out (`services.bulk`), or else runs one task from
django-tasks-db's queue. Beside the loop a housekeeper thread offers every few seconds to run
the periodic work (`services.housekeeping`: the count fold every few seconds, the sweep every
minute); one worker wins each slot. When the database cannot be reached the worker does not
exit: it logs once, waits with a growing pause, reconnects, and carries on where it was.
"""

import contextlib
import logging
import random
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from django.db import connection as db_connection
from django_tasks_db.management.commands.db_worker import Worker as TasksWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from redemption.services import bulk, housekeeping

logger = logging.getLogger("redemption.worker")

DATABASE_GONE = (OperationalError, InterfaceError)
# The longest pause between two tries to reach the database during an outage.
MAX_OUTAGE_PAUSE = 5.0


def housekeeping_tick() -> float:
    """How often a worker offers to run the periodic work: often enough for every slot of the
    sweep and of the count fold."""
    shortest = min(settings.SWEEP_INTERVAL_SECONDS, settings.COUNT_FOLD_SECONDS)
    return max(0.5, min(5.0, shortest / 4))


def database_answers() -> bool:
    """Whether the database answers now (a broken connection is dropped first)."""
    close_old_connections()
    try:
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        with contextlib.suppress(Exception):
            db_connection.close()
        return False
    return True


class Housekeeper(threading.Thread):
    """Offers to run the periodic work every tick, for as long as the worker lives.

    Its own database connection (Django's are per thread); an error is logged and the next
    tick tries again, so nothing that fails once stops the periodic work for good.
    """

    def __init__(self, runner: str) -> None:
        super().__init__(name="housekeeper", daemon=True)
        self.runner = runner
        self.stopping = threading.Event()
        self.failing = False

    def run(self) -> None:
        while True:
            self.offer()
            if self.stopping.wait(housekeeping_tick()):
                return

    def offer(self, now: datetime | None = None) -> None:
        """Run the periodic work (the count fold, the sweep) whose slot of `now` (default: now)
        this worker wins. Each runs whatever happened to the other."""
        failed: Exception | None = None
        for work in (housekeeping.count_fold_run, housekeeping.periodic_run):
            try:
                close_old_connections()
                work(runner=self.runner, now=now)
            except Exception as err:
                failed = failed or err
                with contextlib.suppress(Exception):
                    db_connection.close()
        if failed is not None:
            if not self.failing:
                logger.error("periodic work failed (%s); retrying every tick", failed)
            self.failing = True
        else:
            if self.failing:
                logger.warning("periodic work runs again")
            self.failing = False

    def stop(self) -> None:
        self.stopping.set()


class Worker(TasksWorker):
    """django-tasks-db's worker, plus jobs with leases, the periodic work and outages."""

    def __init__(self, *, name: str, take_jobs: bool = True, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.name = name
        self.take_jobs = take_jobs

    def run(self) -> None:
        logger.info("worker %s starting (tasks worker id %s)", self.name, self.worker_id)
        if self.startup_delay and self.interval:
            time.sleep(random.random())  # against a thundering herd of restarted workers
        keeper: Housekeeper | None = None
        if self.batch:
            Housekeeper(self.name).offer()
        else:
            keeper = Housekeeper(self.name)
            keeper.start()
        try:
            self._loop()
        finally:
            if keeper is not None:
                keeper.stop()

    def _loop(self) -> None:
        while self.running:
            try:
                worked = self.turn()
            except DATABASE_GONE as err:
                self.wait_for_database(err)
                continue
            if self.batch and worked is False:
                logger.info("no more work for worker %s; exiting", self.name)
                return
            if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                logger.info("worker %s ran %d task(s); exiting", self.name, self._run_tasks)
                return
            if self.running and not worked:
                time.sleep(self.interval)

    def turn(self) -> bool | None:
        """Do one piece of work; True if done, False if there was none, None if locked out."""
        close_old_connections()
        try:
            if self.take_jobs and self.run_one_job():
                return True
            return self.run_one_task()
        finally:
            close_old_connections()

    def run_one_job(self) -> bool:
        self.running_task = True  # a first SIGTERM lets the job finish, as for a task
        try:
            ran = bulk.run_next_job(worker=self.name)
        finally:
            self.running_task = False
        if ran:
            self._run_tasks += 1
        return ran

    def run_one_task(self) -> bool | None:
        """Claim and run one task from django-tasks-db's queue (its own loop's body)."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        try:
            with exclusive_transaction(tasks.db):
                task_result = tasks.get_locked()
                if task_result is not None:
                    task_result.claim(self.worker_id)
        except OperationalError as err:
            if is_locked_database_exception(err):
                return None
            raise
        if task_result is None:
            return False
        self.run_task(task_result)
        return True

    def wait_for_database(self, error: BaseException) -> None:
        """Wait, with a growing pause, until the database answers again; never give up."""
        logger.error(
            "database unreachable (%s: %s); worker %s waits for it",
            type(error).__name__,
            str(error).strip()[:200],
            self.name,
        )
        started, pause = time.monotonic(), 0.5
        with contextlib.suppress(Exception):
            db_connection.close()
        while self.running:
            time.sleep(pause)
            if database_answers():
                logger.warning(
                    "database answers again after %.1f s; worker %s carries on%s",
                    time.monotonic() - started,
                    self.name,
                    f" (resuming job(s) {', '.join(map(str, bulk.interrupted_jobs()))})"
                    if bulk.interrupted_jobs()
                    else "",
                )
                return
            pause = min(MAX_OUTAGE_PAUSE, pause * 1.5)
