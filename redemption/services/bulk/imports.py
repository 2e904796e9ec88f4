"""Import a CSV of codes into a personal code type as a job, reporting bad lines one by one."""

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.utils import timezone

from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.db import code_inserts
from redemption.models import Batch, Code, Job
from redemption.services._common import require_ops
from redemption.services.bulk.ahead import read_ahead
from redemption.services.bulk.csv_lines import LineError, is_header, parse_line
from redemption.services.bulk.jobs import (
    MAX_KEPT_LINE_ERRORS,
    JobOutcome,
    Progress,
    job_create,
    new_batch,
)
from redemption.services.bulk.leases import Lease
from redemption.services.bulk.options import code_type_for_history, code_type_for_new_codes

# canonical -> (line number, display, ...): (line, display, state, customCodeInfo JSON) for a
# plain import; a history import keys its lines the same way and keeps more fields.
Pending = dict[str, tuple[Any, ...]]
# A longer line is refused as an error without being read whole (a code line is < 17 KB).
MAX_LINE_BYTES = 64 * 1024
LINE_TOO_LONG = f"The line is longer than {MAX_LINE_BYTES // 1024} KiB."
LINE_UNREADABLE = "The line could not be read."
DUPLICATE_IN_FILE = "This scan code appears earlier in the file."
NO_CODES = "The file has no codes to import."
# Chunks the reader thread may have ready while one is inserted.
_CHUNKS_AHEAD = 2

logger = logging.getLogger(__name__)


def job_import_start(
    *,
    actor: Actor,
    code_type_name: str,
    upload: bytes | BinaryIO | File,
    preserve_state: bool = False,
) -> Job:
    """Store an uploaded CSV and queue its import into a code type.

    A plain import fills a personal type with new codes; with `preserve_state` (a migration,
    Ops only) lines keep every state and the redemption history, and a shared type takes one
    row per profile redemption.
    """
    require_ops(actor)
    ct = (
        code_type_for_history(code_type_name)
        if preserve_state
        else code_type_for_new_codes(code_type_name)
    )
    now = timezone.now()
    job_id = uuid.uuid4()
    if isinstance(upload, bytes | bytearray):
        content: File = ContentFile(bytes(upload))
    elif isinstance(upload, File):
        content = upload
    else:
        content = File(upload)
    name = default_storage.save(f"imports/{job_id}.csv", content)
    try:
        with transaction.atomic():
            batch = new_batch(ct=ct, kind=Batch.Kind.IMPORT, actor=actor, now=now)
            job = job_create(
                actor=actor,
                ct=ct,
                kind=Job.Kind.IMPORT,
                params={"preserveState": True} if preserve_state else {},
                now=now,
                id=job_id,
                batch=batch,
                upload=name,
            )
    except BaseException:
        default_storage.delete(name)
        raise
    return job


def _count_lines(name: str) -> int:
    lines, last = 0, b"\n"
    with default_storage.open(name, "rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (0 if last == b"\n" else 1)


class Taken:
    """Lines taken by the reader thread: the chunk they make, and what they add to the run.

    Built whole in the reader thread and handed over; the run applies it in `absorb`.
    """

    def __init__(self) -> None:
        self.pending: Pending = {}
        # (summary counter, line, scan code shown, error code, message) of each refused line.
        self.refused: list[tuple[str, int | None, str | None, str, str]] = []
        self.records = 0  # lines after the header that were not blank
        self.lines = 0  # the last physical line this chunk covers
        self.state: dict[str, Any] = {}  # the taker's part of the job's checkpoint
        self.final = False  # the file ends here
        self.copy_text: str | None = None  # the chunk's straight COPY, made ahead (PostgreSQL)


class LineTaker:
    """Turns an import file's lines into chunks. No database work: it runs in the reader
    thread, a chunk ahead of the run that inserts them."""

    def __init__(self, run: "ImportRun", layout: code_inserts.CopyLayout | None = None) -> None:
        self.job_id = run.job.pk
        self.header_seen: bool = run.taken_state["headerSeen"]
        self.taken = Taken()
        self.run = run  # read here for `direct` only
        self.layout = layout  # to write each chunk's straight COPY, if given

    def take(self, line_no: int, text: str) -> None:
        """Take one non-blank line: the header, or a record."""
        header, self.header_seen = not self.header_seen and is_header(text), True
        if header:
            return
        self.taken.records += 1
        self.add_line(line_no, text)

    def add_line(self, line_no: int, text: str) -> None:
        try:
            parsed = parse_line(text)
        except Exception:
            # parse_line answers any text; if it ever does not, lose the line, not the job.
            logger.exception("import %s: line %d could not be parsed", self.job_id, line_no)
            self.invalid(line_no, None, exc.InvalidParameterError.code, LINE_UNREADABLE)
            return
        if isinstance(parsed, LineError):
            self.invalid(line_no, parsed.scan_code, parsed.code, parsed.message)
            return
        if parsed.canonical in self.taken.pending:
            self.duplicate_in_file(line_no, parsed.display)
            return
        self.taken.pending[parsed.canonical] = (
            line_no,
            parsed.display,
            parsed.state,
            parsed.info_json,
        )

    def invalid(self, line: int, scan: str | None, code: str, message: str) -> None:
        self.taken.refused.append(("invalid", line, scan, code, message))

    def duplicate_in_file(self, line: int, shown: str | None) -> None:
        self.taken.refused.append(
            ("duplicatesInFile", line, shown, exc.CodeDuplicateError.code, DUPLICATE_IN_FILE)
        )

    def state(self) -> dict[str, Any]:
        """What a worker taking the job over needs to go on taking lines."""
        return {"headerSeen": self.header_seen}

    def cut(self, line_no: int, *, final: bool = False) -> Taken:
        """Hand over the lines taken up to `line_no` and start the next chunk."""
        taken, self.taken = self.taken, Taken()
        taken.lines, taken.state, taken.final = line_no, self.state(), final
        # Write the chunk's COPY text here, off the thread that waits for the database, as
        # long as chunks still go straight in (a plain bool, read across threads).
        if self.layout is not None and self.run.direct and taken.pending:
            taken.copy_text = self.layout.text(_rows(taken.pending))
        return taken


class ImportRun:
    """State of one import: counters, the first errors, and the chunk being inserted."""

    def __init__(self, job: Job, batch: Batch, lease: Lease, progress: Progress) -> None:
        self.job = job
        self.lease = lease
        self.progress = progress
        self.batch = batch
        self.now = timezone.now()
        # A job taken over resumes after the last line its previous holder committed, with
        # the counters and errors committed with it.
        self.resumed_from = job.done
        self.errors: list[dict[str, Any]] = list(job.errors) if job.done else []
        self.error_count = job.error_count if job.done else 0
        self.summary = {
            "imported": 0,
            "duplicatesInFile": 0,
            "duplicatesInDatabase": 0,
            "invalid": 0,
        }
        if job.done:
            self.summary.update(job.summary)
        self.records = int(job.checkpoint.get("records", 0)) if job.done else 0
        # The reader thread's part of the checkpoint, as of the last chunk absorbed.
        self.taken_state: dict[str, Any] = {
            "headerSeen": bool(job.checkpoint.get("headerSeen")) if job.done else False
        }
        self.chunk: Pending = {}
        # A chunk and its COPY text, when the reader thread made it.
        self.copy_ahead: tuple[Pending, str | None] = ({}, None)
        self.lines = job.done
        # Whether chunks try a straight COPY first: until one meets a code already there.
        self.direct = True

    def taker(self) -> LineTaker:
        """The reader thread's side of this run."""
        batch = self.batch
        layout = code_inserts.ahead_layout(
            code_type_id=batch.code_type_id, batch_id=batch.pk, now=self.now
        )
        return LineTaker(self, layout)

    def absorb(self, taken: Taken) -> None:
        """Make a chunk from the reader thread the pending one, and count its refused lines."""
        for counter, line, scan, code, message in taken.refused:
            self.summary[counter] += 1
            self.error(line, scan, code, message)
        self.records += taken.records
        self.lines = max(self.lines, taken.lines)
        self.taken_state = taken.state
        self.chunk = taken.pending
        self.copy_ahead = (taken.pending, taken.copy_text)

    def error(self, line: int | None, scan: str | None, code: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_LINE_ERRORS:
            self.errors.append({"line": line, "scanCode": scan, "code": code, "message": message})

    def invalid(self, line: int, scan: str | None, code: str, message: str) -> None:
        self.summary["invalid"] += 1
        self.error(line, scan, code, message)

    def checkpoint(self) -> dict[str, Any]:
        """What a worker taking the job over needs beyond the counters."""
        return {"records": self.records, **self.taken_state}

    def duplicate_in_file(self, line_no: int, shown: str | None) -> None:
        self.summary["duplicatesInFile"] += 1
        self.error(line_no, shown, exc.CodeDuplicateError.code, DUPLICATE_IN_FILE)

    def duplicate_in_database(self, line_no: int, shown: str | None, shared: bool) -> None:
        self.summary["duplicatesInDatabase"] += 1
        message = (
            "This scan code is the scan code of a shared code type."
            if shared
            else "A code with this scan code already exists."
        )
        self.error(line_no, shown, exc.CodeDuplicateError.code, message)

    def flush(self) -> None:
        """Commit the pending chunk and write progress to the job row."""
        pending = self.chunk
        self.chunk = {}
        with transaction.atomic():
            if pending:
                self._insert_or_split(pending)
            Batch.objects.filter(pk=self.batch.pk).update(quantity=self.summary["imported"])
            self.lease.renew(
                total=self.job.total,
                done=self.lines,
                errors=self.errors,
                error_count=self.error_count,
                summary=self.summary,
                checkpoint=self.checkpoint(),
            )
        self.progress(self.lines, self.job.total)

    def _insert_or_split(self, pending: Pending) -> None:
        """Insert a chunk; should the database refuse it, insert line by line and report the
        lines it refuses, so that no content the parser let through can fail the job."""
        try:
            with transaction.atomic():
                self._insert(pending)
            return
        except DatabaseError:
            logger.warning("import %s: a chunk was refused; retrying line by line", self.job.pk)
        for canon, line in pending.items():
            try:
                with transaction.atomic():
                    self._insert({canon: line})
            except DatabaseError as err:
                message = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
                self.invalid(
                    line[0],
                    line[1],
                    exc.InvalidParameterError.code,
                    f"The database refused this line ({message}).",
                )

    def _insert(self, pending: Pending) -> None:
        if code_inserts.returns_inserted():
            self._insert_then_classify(pending)
            return
        existing = {
            canon: (batch_id, anchor)
            for canon, batch_id, anchor in Code.objects.filter(
                canonical__in=list(pending)
            ).values_list("canonical", "batch_id", "is_shared_anchor")
        }
        fresh = []
        for canon, (line_no, display, state, info_json) in pending.items():
            if canon in existing:
                batch_id, anchor = existing[canon]
                if batch_id == self.batch.pk:
                    self.duplicate_in_file(line_no, display)
                else:
                    self.duplicate_in_database(line_no, display, anchor)
            else:
                fresh.append((canon, line_no, display, state, info_json))
        added = code_inserts.codes_insert(
            [(display, canon, state, info_json) for canon, _, display, state, info_json in fresh],
            code_type_id=self.batch.code_type_id,
            batch_id=self.batch.pk,
            now=self.now,
        )
        if added < len(fresh):
            # Someone inserted some of these between our look-up and our insert.
            taken = set(
                Code.objects.filter(canonical__in=[f[0] for f in fresh])
                .exclude(batch=self.batch)
                .values_list("canonical", flat=True)
            )
            for canon, line_no, display, _, _ in fresh:
                if canon in taken:
                    self.duplicate_in_database(line_no, display, False)
        self.summary["imported"] += added

    def _insert_then_classify(self, pending: Pending) -> None:
        """Insert the chunk; look up only the codes the unique index turned away.

        An import of fresh codes then costs no duplicate query at all.
        """
        made_for, copy_text = self.copy_ahead
        direct = self.direct
        # The reader thread wrote this chunk's COPY text (not the lines of a chunk the
        # database refused: they come one by one). Send it as it is: building the chunk's rows
        # here, while the database waits for the next COPY, cost about a twentieth of the
        # import's time; they are built only if the database refuses the chunk.
        if direct and copy_text is not None and pending is made_for:
            if code_inserts.codes_copy_made_ahead(
                copy_text,
                code_type_id=self.batch.code_type_id,
                batch_id=self.batch.pk,
                now=self.now,
            ):
                self.summary["imported"] += len(pending)
                return
            direct = False  # a code already there: the staging insert tells which
        inserted = code_inserts.codes_insert_returning(
            _rows(pending),
            code_type_id=self.batch.code_type_id,
            batch_id=self.batch.pk,
            now=self.now,
            direct=direct,
        )
        self.summary["imported"] += len(inserted)
        refused = [canon for canon in pending if canon not in inserted]
        if not refused:
            return
        self.direct = False
        owners = {
            canon: (batch_id, anchor)
            for canon, batch_id, anchor in Code.objects.filter(canonical__in=refused).values_list(
                "canonical", "batch_id", "is_shared_anchor"
            )
        }
        for canon in refused:
            line_no, display, _, _ = pending[canon]
            batch_id, anchor = owners.get(canon, (None, False))
            if batch_id == self.batch.pk:
                self.duplicate_in_file(line_no, display)
            else:
                self.duplicate_in_database(line_no, display, anchor)


def _rows(pending: Pending) -> list[tuple[str, ...]]:
    """A plain import's chunk as code_inserts rows: (display, canonical, state, info JSON)."""
    return [(display, canon, state, info) for canon, (_, display, state, info) in pending.items()]


def _physical_lines(fh: Any) -> Iterator[bytes | None]:
    """Yield each line's bytes (without its line feed), or None for a line over MAX_LINE_BYTES.

    Reads at most MAX_LINE_BYTES + 1 bytes at a time: an over-long line is skipped without
    ever being held whole, however long it is.
    """
    while line := fh.readline(MAX_LINE_BYTES + 1):
        if line.endswith(b"\n") or len(line) <= MAX_LINE_BYTES:
            yield line.removesuffix(b"\n")
            continue
        while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
            pass
        yield None


# A line as the reader thread reads it: (line number, text or None, why it cannot be read
# or None).
ReadLine = tuple[int, str | None, str | None]


def _read_lines(name: str, resumed_from: int) -> Iterator[ReadLine]:
    """Yield each physical line after the ones already committed, decoded; an unreadable line
    comes with the reason instead of its text."""
    with default_storage.open(name, "rb") as fh:
        for line_no, raw in enumerate(_physical_lines(fh), start=1):
            if line_no <= resumed_from:
                continue
            if raw is None:
                yield line_no, None, LINE_TOO_LONG
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield line_no, None, "The line is not UTF-8 text."
                continue
            if line_no == 1:
                text = text.removeprefix("\ufeff")
            yield line_no, text.rstrip("\r\n"), None


def _chunks(lines: Iterator[ReadLine], taker: LineTaker, size: int) -> Iterator[Taken]:
    """Cut the lines into chunks of `size` codes, or `size` lines when fewer of them are
    codes; the last chunk, maybe empty, is marked final. Runs in the reader thread."""
    since_cut = 0
    line_no = 0
    for line_no, text, unreadable in lines:
        if text is None:
            taker.invalid(line_no, None, exc.InvalidParameterError.code, unreadable or "")
            continue
        since_cut += 1
        if text.strip():
            taker.take(line_no, text)
        if len(taker.taken.pending) >= size or since_cut >= size:
            yield taker.cut(line_no)
            since_cut = 0
    yield taker.cut(line_no, final=True)


def run_lines(
    job: Job,
    lease: Lease,
    progress: Progress,
    make_run: Callable[[Job, Batch, Lease, Progress], ImportRun],
) -> None:
    """Import the job's uploaded file chunk by chunk through a run made by `make_run`; each
    chunk commits with the line it reached, so a job taken over never imports a line twice.

    A reader thread reads, parses and cuts the next chunks while this thread waits for the
    database to take the current one.
    """
    batch = job.batch
    if batch is None:
        raise exc.RedemptionError("The job's batch no longer exists.")
    if not job.upload or not default_storage.exists(job.upload):
        raise exc.RedemptionError("The uploaded file is missing.")
    total = _count_lines(job.upload)
    with transaction.atomic():
        lease.renew(total=total)
    job.total = total
    run = make_run(job, batch, lease, progress)
    chunk_size = max(1, settings.JOB_BATCH_SIZE)
    chunks = read_ahead(
        _chunks(_read_lines(job.upload, run.resumed_from), run.taker(), chunk_size),
        block=1,
        depth=_CHUNKS_AHEAD,
    )
    with closing(chunks):
        for taken in chunks:
            run.absorb(taken)
            if taken.final:
                run.lines = job.total = max(total, run.lines)
                if not run.records and not run.error_count:
                    run.error(None, None, exc.InvalidParameterError.code, NO_CODES)
            run.flush()


def import_outcome(job: Job, complete: bool) -> JobOutcome:
    """The end audit event of an import: the counts committed so far."""
    summary = {
        "imported": 0,
        "duplicatesInFile": 0,
        "duplicatesInDatabase": 0,
        "invalid": 0,
        **job.summary,
    }
    return JobOutcome(
        "codes.import",
        str(job.batch_id or ""),
        {"errors": job.error_count, **summary, "complete": complete},
    )
