"""Helpers the management commands share: domain errors as CommandError, job progress."""

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from redemption import exceptions as exc
from redemption.models import Job
from redemption.services import bulk
from redemption.tasks import jobs_run_in_a_worker


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


def job_finish(command: BaseCommand, job: Job, *, wait: bool) -> Job | None:
    """Run or wait for the job when asked (or when nothing else would run it); report it."""
    if not wait and jobs_run_in_a_worker():
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
