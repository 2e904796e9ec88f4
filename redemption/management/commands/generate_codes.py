"""Generate codes for a personal code type as a job; --wait runs it here with a progress bar."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from redemption import codes
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.models import Job
from redemption.services import bulk


def command_error(err: exc.RedemptionError) -> CommandError:
    """Turn a domain error into a one-line CommandError naming the bad fields."""
    fields = err.details.get("fields")
    extra = "; ".join(f"{k}: {v}" for k, v in fields.items()) if fields else ""
    return CommandError(f"{err.code}: {err.message}" + (f" ({extra})" if extra else ""))


class ProgressBar:
    """A one-line progress bar for a terminal (nothing at all when not on a terminal)."""

    def __init__(self, stream: OutputWrapper, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.enabled = stream.isatty()
        self.last: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or not total:
            return
        percent = min(100, done * 100 // total)
        if self.last == (percent, total):
            return
        self.last = (percent, total)
        filled = self.width * percent // 100
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r[{bar}] {percent:3d}%  {done:,} / {total:,}", style_func=str, ending=""
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.last is not None:
            self.stream.write("", style_func=str)


def runs_in_a_worker() -> bool:
    """True when queued tasks are picked up by `manage.py db_worker` (the database backend)."""
    from django_tasks_db.backend import DatabaseBackend

    from redemption.tasks import run_job_task

    return isinstance(run_job_task.get_backend(), DatabaseBackend)


def finish(command: BaseCommand, job: Job, *, wait: bool) -> Job | None:
    """Run or wait for the job when asked (or when nothing else would run it); report it."""
    if not wait and runs_in_a_worker():
        command.stderr.write(
            "Queued: the task worker (manage.py db_worker) runs it. Pass --wait to run it here.",
            style_func=str,
        )
        return None
    bar = ProgressBar(command.stderr)
    try:
        job = bulk.job_run_here(job.pk, progress=bar)
    finally:
        bar.close()
    if job.status == Job.Status.FAILED:
        message = job.errors[-1]["message"] if job.errors else "unknown error"
        raise CommandError(f"Job {job.pk} failed: {message}")
    return job


class Command(BaseCommand):
    help = (
        "Generate QUANTITY codes (1-10,000,000) for a personal code type as a background job. "
        "Prints the job id; --wait runs the job in this process and reports the result."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code_type", help="Name of a personal (SINGLE) code type.")
        parser.add_argument("quantity", type=int)
        parser.add_argument("--state", choices=["Inactive", "Available"], default=None)
        parser.add_argument("--prefix", help="Prefix joined to each code with a hyphen.")
        parser.add_argument("--algorithm", choices=codes.ALGORITHMS, default=None)
        parser.add_argument(
            "--length", type=int, help="Crockford length, 8-32, check character included."
        )
        parser.add_argument(
            "--check", action="store_true", help="End every code with a check character."
        )
        parser.add_argument("--custom-info", help="customCodeInfo for every code, a JSON object.")
        parser.add_argument(
            "--wait", action="store_true", help="Run the job here and wait for it to finish."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        details: dict[str, Any] = {}
        if options["length"] is not None:
            details["length"] = options["length"]
        if options["check"]:
            details["includeCheck"] = True
        info = None
        if options["custom_info"]:
            try:
                info = json.loads(options["custom_info"])
            except ValueError as err:
                raise CommandError(f"--custom-info is not JSON: {err}") from None
        try:
            job = bulk.job_generate_start(
                actor=Actor.system("cli:generate_codes"),
                code_type_name=options["code_type"],
                quantity=options["quantity"],
                state=options["state"],
                custom_code_info=info,
                prefix=options["prefix"],
                algorithm=options["algorithm"],
                algorithm_details=details or None,
            )
        except exc.RedemptionError as err:
            raise command_error(err) from None
        self.stdout.write(str(job.pk))
        finished = finish(self, job, wait=options["wait"])
        if finished is not None:
            self.stdout.write(
                f"Generated {finished.done:,} codes in batch {finished.batch_id} "
                f"of “{finished.code_type_name}”."
            )
