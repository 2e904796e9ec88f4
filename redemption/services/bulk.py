"""Bulk work on a code type: generate, import, export, delete-all and reset-all, run as jobs.

Jobs are rows in `Job`; `run_job` is what the background task executes. Every job claims its
row with a conditional UPDATE (queued -> running), so a job runs at most once even when a
worker and a `--wait` command both try. Work happens in chunks of `settings.JOB_BATCH_SIZE`,
each chunk in its own transaction, with progress written to the job row as it goes; memory
stays flat whatever the quantity. Inserts never ask "does this code exist?" per code: the
unique index on `Code.canonical` settles collisions (COPY + INSERT ... ON CONFLICT DO NOTHING on
PostgreSQL, a multi-row INSERT ... ON CONFLICT DO NOTHING on SQLite) and generation tops up
until the batch holds exactly the requested quantity.
"""

import csv
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, connection, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from redemption import codes
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.ids import POSTGRES_UUID7_SQL, uuid7
from redemption.models import (
    INITIAL_STATES,
    STATE_ORDER,
    Attempt,
    Batch,
    Code,
    CodeType,
    Job,
    SharedRedemption,
    State,
)
from redemption.records import ts
from redemption.services._common import (
    MAX_JSON_BYTES,
    audit,
    check_json_object,
    get_code_type,
    require_ops,
)

logger = logging.getLogger(__name__)

MAX_INLINE_QUANTITY = 1_000
MAX_JOB_QUANTITY = 10_000_000
MAX_KEPT_LINE_ERRORS = 1_000
EXPORT_CHUNK_SIZE = 5_000
# `algorithmDetails` keys. `length` lives here (not at the top level) to keep the brainCloud
# request shape: {algorithmName, algorithmDetails}. It counts the check character, if any.
ALGORITHM_DETAIL_KEYS = frozenset({"includeCheck", "length"})
# A chunk that inserts nothing this many times in a row means the code space is exhausted.
_MAX_FRUITLESS_ROUNDS = 20
_DEADLOCK_RETRIES = 3
_SLOT_STATES = (State.REDEEMED, State.IN_PROGRESS)

EXPORT_HEADER = [
    "scanCode",
    "codeState",
    "codeType",
    "batchId",
    "customCodeInfo",
    "redeemedByProfileId",
    "redeemedAt",
    "createdAt",
]

Progress = Callable[[int, int], None]
Candidates = Iterator[tuple[str, str]]


# --- option checks ------------------------------------------------------------------------------


def _check_quantity(quantity: Any, limit: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= limit:
        raise exc.invalid_fields({"quantity": f"must be a whole number from 1 to {limit:,}"})
    return quantity


def _check_initial_state(state: Any) -> str:
    if state is None:
        return State.INACTIVE
    if state not in INITIAL_STATES:
        raise exc.invalid_fields({"codeState": "must be Inactive or Available"})
    return str(state)


def _shape_from_options(*, prefix: Any, algorithm: Any, algorithm_details: Any) -> codes.CodeShape:
    """Validate algorithmName, prefix and algorithmDetails and return the code shape."""
    if algorithm is not None and not isinstance(algorithm, str):
        raise exc.invalid_fields({"algorithmName": "must be a string"})
    if prefix is not None and not isinstance(prefix, str):
        raise exc.invalid_fields({"prefix": "must be a string"})
    details = {} if algorithm_details is None else algorithm_details
    if not isinstance(details, dict):
        raise exc.invalid_fields({"algorithmDetails": "must be an object"})
    unknown = sorted(set(details) - ALGORITHM_DETAIL_KEYS)
    if unknown:
        raise exc.invalid_fields(
            {
                f"algorithmDetails.{k}": "unknown field (allowed: includeCheck, length)"
                for k in unknown
            }
        )
    include_check = details.get("includeCheck", False)
    if not isinstance(include_check, bool):
        raise exc.invalid_fields({"algorithmDetails.includeCheck": "must be true or false"})
    length = details.get("length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
        raise exc.invalid_fields({"algorithmDetails.length": "must be a whole number"})
    try:
        shape = codes.make_shape(
            algorithm=algorithm, length=length, prefix=prefix, include_check=include_check
        )
    except ValueError as err:
        field, _, message = str(err).partition(": ")
        field = "algorithmDetails.length" if field == "length" else field
        raise exc.invalid_fields({field: message}) from None
    if length is not None and length != shape.length:
        raise exc.invalid_fields(
            {"algorithmDetails.length": f"{shape.algorithm} codes are always {shape.length} long"}
        )
    return shape


def _code_type_for_generation(name: str) -> CodeType:
    ct = get_code_type(name)
    if ct.is_shared:
        raise exc.TypeMustBeSingleUseError()
    if ct.is_disabled:
        raise exc.CodeTypeDisabledError()
    return ct


def already_issued(shape: codes.CodeShape) -> int:
    """How many codes of this shape (algorithm, length, prefix, check) were ever generated."""
    rows = (
        Batch.objects.filter(
            kind=Batch.Kind.GENERATE,
            algorithm=shape.algorithm,
            length=shape.length,
            include_check=shape.include_check,
        )
        .values("prefix")
        .annotate(n=Sum("quantity"))
        .order_by()
    )
    # Prefixes are stored in display form; "AB-C" and "ABC" share one canonical space.
    return sum(r["n"] or 0 for r in rows if codes.canonical(r["prefix"]) == shape.prefix_canonical)


def _check_feasible(shape: codes.CodeShape, quantity: int) -> None:
    issued = already_issued(shape)
    if not codes.feasible(shape, quantity=quantity, already_issued=issued):
        largest = max(0, (shape.space - issued) // codes.SPACE_SAFETY_FACTOR)
        raise exc.InsufficientCodeSpaceError(details={"quantity": quantity, "maxQuantity": largest})


def _prepare_generation(
    *,
    actor: Actor,
    code_type_name: str,
    quantity: Any,
    limit: int,
    state: Any,
    custom_code_info: Any,
    prefix: Any,
    algorithm: Any,
    algorithm_details: Any,
) -> tuple[CodeType, int, str, dict[str, Any], codes.CodeShape]:
    require_ops(actor)
    quantity = _check_quantity(quantity, limit)
    state = _check_initial_state(state)
    info = check_json_object(custom_code_info, "customCodeInfo")
    shape = _shape_from_options(
        prefix=prefix, algorithm=algorithm, algorithm_details=algorithm_details
    )
    ct = _code_type_for_generation(code_type_name)
    _check_feasible(shape, quantity)
    return ct, quantity, state, info, shape


def _new_batch(
    *, ct: CodeType, kind: str, actor: Actor, now: datetime, quantity: int = 0, shape=None
) -> Batch:
    fields: dict[str, Any] = {}
    if shape is not None:
        fields = {
            "algorithm": shape.algorithm,
            "prefix": shape.prefix,
            "length": shape.length,
            "include_check": shape.include_check,
        }
    return Batch.objects.create(
        code_type=ct,
        kind=kind,
        quantity=quantity,
        created_by=actor.label[:200],
        created_at=now,
        **fields,
    )


def _actor_params(actor: Actor) -> dict[str, str]:
    return {"kind": actor.kind, "id": actor.id, "label": actor.label[:200]}


def _job_actor(job: Job) -> Actor:
    a = job.params.get("actor") or {}
    return Actor(
        kind=a.get("kind", "system"), id=a.get("id", ""), label=a.get("label", job.created_by)
    )


# --- inserting codes ---------------------------------------------------------------------------

_COLUMNS = (
    "id, code_type_id, is_shared_anchor, scan_code, canonical, state, version, custom_code_info,"
    " custom_redemption_info, batch_id, current_attempt, created_at, activated_at, updated_at"
)
_STAGE = "redemption_code_stage"


def _insert_codes(
    rows: Sequence[tuple[str, ...]],
    *,
    code_type_id: int,
    batch_id: uuid.UUID,
    now: datetime,
    state: str | None = None,
    info_json: str | None = None,
) -> int:
    """Insert codes whose canonical form is still free; return how many went in.

    With `state` and `info_json` given (generation) rows are (display, canonical) pairs;
    otherwise (import) rows are (display, canonical, state, info_json) tuples.
    """
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        return _insert_codes_postgres(
            rows, code_type_id=code_type_id, batch_id=batch_id, now=now, state=state, info=info_json
        )
    return _insert_codes_sqlite(
        rows, code_type_id=code_type_id, batch_id=batch_id, now=now, state=state, info=info_json
    )


def _insert_codes_postgres(
    rows: Sequence[tuple[str, ...]],
    *,
    code_type_id: int,
    batch_id: uuid.UUID,
    now: datetime,
    state: str | None,
    info: str | None,
    returning: bool = False,
) -> Any:
    """Insert through a staging table; return the count, or with `returning` the set of
    canonical codes that went in."""
    table = Code._meta.db_table
    columns = "scan_code, canonical" if state is not None else "scan_code, canonical, state, info"
    with connection.cursor() as cursor:
        # A session-local staging table: COPY is the fastest way in, and the INSERT ... SELECT
        # lets the unique index on canonical drop collisions without a per-code query.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(scan_code text, canonical text, state text, info text)"
        )
        cursor.execute(f"TRUNCATE {_STAGE}")
        with cursor.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({_COLUMNS}) "
            f"SELECT {POSTGRES_UUID7_SQL}, %(type)s::bigint, false, s.scan_code, s.canonical,"
            " COALESCE(s.state, %(state)s::text), 1,"
            " COALESCE(s.info, %(info)s::text)::jsonb, '{}'::jsonb, %(batch)s::uuid, 0,"
            " %(now)s::timestamptz,"
            " CASE WHEN COALESCE(s.state, %(state)s::text) = 'Available'"
            " THEN %(now)s::timestamptz END, %(now)s::timestamptz"
            f" FROM {_STAGE} s ON CONFLICT (canonical) DO NOTHING"
            + (" RETURNING canonical" if returning else ""),
            {"type": code_type_id, "state": state, "info": info, "batch": batch_id, "now": now},
        )
        if returning:
            return {row[0] for row in cursor.fetchall()}
        return cursor.rowcount


def _insert_codes_sqlite(
    rows: Sequence[tuple[str, ...]],
    *,
    code_type_id: int,
    batch_id: uuid.UUID,
    now: datetime,
    state: str | None,
    info: str | None,
) -> int:
    opts = Code._meta
    pk_field = opts.pk
    batch_db = opts.get_field("batch").get_db_prep_save(batch_id, connection)
    now_db = opts.get_field("created_at").get_db_prep_save(now, connection)
    available = State.AVAILABLE.value

    def values() -> Iterator[tuple[Any, ...]]:
        for row in rows:
            row_state = state if state is not None else row[2]
            row_info = info if info is not None else row[3]
            yield (
                pk_field.get_db_prep_save(uuid7(), connection),
                code_type_id,
                False,
                row[0],
                row[1],
                row_state,
                1,
                row_info,
                "{}",
                batch_db,
                0,
                now_db,
                now_db if row_state == available else None,
                now_db,
            )

    placeholders = ", ".join(["%s"] * 14)
    with connection.cursor() as cursor:
        # executemany sums the changes of every row; a skipped conflict counts zero.
        cursor.executemany(
            f"INSERT INTO {opts.db_table} ({_COLUMNS}) VALUES ({placeholders}) "
            "ON CONFLICT (canonical) DO NOTHING",
            list(values()),
        )
        return cursor.rowcount


def random_candidates(shape: codes.CodeShape) -> Candidates:
    """An endless stream of (display, canonical) codes of the given shape."""
    while True:
        yield from codes.generate(shape, 10_000)


def batch_fill(
    *,
    batch: Batch,
    quantity: int,
    state: str,
    custom_code_info: dict[str, Any],
    candidates: Iterable[tuple[str, str]],
    on_chunk: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> int:
    """Insert codes from `candidates` into `batch` until it holds `quantity`; return the count.

    Candidates that collide with any existing code (or with each other) are skipped and more
    are drawn: the top-up. Each chunk commits on its own; `on_chunk(done)` runs inside that
    chunk's transaction so progress and codes commit together.
    """
    now = now or timezone.now()
    stream = iter(candidates)
    info_json = json.dumps(custom_code_info, separators=(",", ":"))
    chunk_size = max(1, settings.JOB_BATCH_SIZE)
    done = Code.objects.filter(batch=batch).count()
    fruitless = 0
    while done < quantity:
        want = min(chunk_size, quantity - done)
        chunk: dict[str, str] = {}
        for display, canon in stream:
            chunk.setdefault(canon, display)
            if len(chunk) >= want:
                break
        if not chunk:
            raise exc.InsufficientCodeSpaceError(
                "Ran out of candidate codes before the batch was full."
            )
        with transaction.atomic():
            added = _insert_codes(
                [(display, canon) for canon, display in chunk.items()],
                code_type_id=batch.code_type_id,
                batch_id=batch.pk,
                now=now,
                state=state,
                info_json=info_json,
            )
            done += added
            if on_chunk is not None:
                on_chunk(done)
        fruitless = 0 if added else fruitless + 1
        if fruitless >= _MAX_FRUITLESS_ROUNDS:
            raise exc.InsufficientCodeSpaceError()
    return done


# --- generation ---------------------------------------------------------------------------------


def codes_generate_inline(
    *,
    actor: Actor,
    code_type_name: str,
    quantity: int,
    state: str | None = None,
    custom_code_info: dict[str, Any] | None = None,
    prefix: str | None = None,
    algorithm: str | None = None,
    algorithm_details: dict[str, Any] | None = None,
) -> tuple[Batch, list[str]]:
    """Generate up to 1,000 codes in one batch and return them (display forms)."""
    ct, quantity, state, info, shape = _prepare_generation(
        actor=actor,
        code_type_name=code_type_name,
        quantity=quantity,
        limit=MAX_INLINE_QUANTITY,
        state=state,
        custom_code_info=custom_code_info,
        prefix=prefix,
        algorithm=algorithm,
        algorithm_details=algorithm_details,
    )
    now = timezone.now()
    with transaction.atomic():
        batch = _new_batch(
            ct=ct, kind=Batch.Kind.GENERATE, actor=actor, now=now, quantity=quantity, shape=shape
        )
        batch_fill(
            batch=batch,
            quantity=quantity,
            state=state,
            custom_code_info=info,
            candidates=random_candidates(shape),
            now=now,
        )
        generated = list(
            Code.objects.filter(batch=batch)
            .order_by("canonical")
            .values_list("scan_code", flat=True)
        )
        _audit_generate(actor=actor, batch=batch, count=len(generated), state=state, now=now)
    return batch, generated


def job_generate_start(
    *,
    actor: Actor,
    code_type_name: str,
    quantity: int,
    state: str | None = None,
    custom_code_info: dict[str, Any] | None = None,
    prefix: str | None = None,
    algorithm: str | None = None,
    algorithm_details: dict[str, Any] | None = None,
) -> Job:
    """Validate a generation request, then queue it as a job (up to 10,000,000 codes)."""
    ct, quantity, state, info, shape = _prepare_generation(
        actor=actor,
        code_type_name=code_type_name,
        quantity=quantity,
        limit=MAX_JOB_QUANTITY,
        state=state,
        custom_code_info=custom_code_info,
        prefix=prefix,
        algorithm=algorithm,
        algorithm_details=algorithm_details,
    )
    now = timezone.now()
    with transaction.atomic():
        batch = _new_batch(
            ct=ct, kind=Batch.Kind.GENERATE, actor=actor, now=now, quantity=quantity, shape=shape
        )
        job = Job.objects.create(
            kind=Job.Kind.GENERATE,
            code_type=ct,
            code_type_name=ct.name,
            batch=batch,
            total=quantity,
            params={
                "state": state,
                "customCodeInfo": info,
                "algorithm": shape.algorithm,
                "length": shape.length,
                "prefix": shape.prefix,
                "includeCheck": shape.include_check,
                "actor": _actor_params(actor),
            },
            created_by=actor.label[:200],
            created_at=now,
        )
        _enqueue_on_commit(job)
    return job


def _audit_generate(
    *, actor: Actor, batch: Batch, count: int, state: str, now=None, **extra: Any
) -> None:
    audit(
        actor=actor,
        action="codes.generate",
        code_type_name=batch.code_type.name,
        target_id=str(batch.pk),
        details={
            "count": count,
            "batchId": str(batch.pk),
            "state": state,
            "algorithm": batch.algorithm,
            "prefix": batch.prefix,
            "length": batch.length,
            "includeCheck": batch.include_check,
            **extra,
        },
        at=now,
    )


def _run_generate(job: Job, progress: Progress) -> None:
    batch = job.batch
    if batch is None:
        raise exc.RedemptionError("The job's batch no longer exists.")
    p = job.params
    shape = codes.make_shape(
        algorithm=p["algorithm"],
        length=p["length"],
        prefix=p["prefix"],
        include_check=p["includeCheck"],
    )

    def on_chunk(done: int) -> None:
        Job.objects.filter(pk=job.pk).update(done=done)
        progress(done, job.total)

    actor = _job_actor(job)
    done = 0
    try:
        done = batch_fill(
            batch=batch,
            quantity=job.total,
            state=p["state"],
            custom_code_info=p["customCodeInfo"],
            candidates=random_candidates(shape),
            on_chunk=on_chunk,
        )
    except Exception:
        done = Code.objects.filter(batch=batch).count()
        _audit_generate(
            actor=actor,
            batch=batch,
            count=done,
            state=p["state"],
            jobId=str(job.pk),
            complete=False,
        )
        raise
    _audit_generate(actor=actor, batch=batch, count=done, state=p["state"], jobId=str(job.pk))


# --- import -------------------------------------------------------------------------------------


def job_import_start(*, actor: Actor, code_type_name: str, upload: bytes | BinaryIO | File) -> Job:
    """Store an uploaded CSV and queue its import into a personal code type."""
    require_ops(actor)
    ct = _code_type_for_generation(code_type_name)
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
            batch = _new_batch(ct=ct, kind=Batch.Kind.IMPORT, actor=actor, now=now)
            job = Job.objects.create(
                id=job_id,
                kind=Job.Kind.IMPORT,
                code_type=ct,
                code_type_name=ct.name,
                batch=batch,
                upload=name,
                params={"actor": _actor_params(actor)},
                created_by=actor.label[:200],
                created_at=now,
            )
            _enqueue_on_commit(job)
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


def _split_line(text: str) -> list[str]:
    """Split `scanCode[,codeState][,customCodeInfo]`; the JSON may be CSV-quoted or not."""
    if '"' not in text:
        return text.split(",", 2)
    fields = next(csv.reader([text]))
    if len(fields) <= 3:
        return fields
    # Unquoted JSON with commas inside: everything after the second comma is the JSON.
    scan, state, info = text.split(",", 2)
    return [_unquote(scan), _unquote(state), info]


def _unquote(field: str) -> str:
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field


class _ImportRun:
    """State of one import: counters, the first errors, and the chunk being built."""

    def __init__(self, job: Job, batch: Batch, progress: Progress) -> None:
        self.job = job
        self.progress = progress
        self.batch = batch
        self.now = timezone.now()
        self.errors: list[dict[str, Any]] = []
        self.error_count = 0
        self.summary = {
            "imported": 0,
            "duplicatesInFile": 0,
            "duplicatesInDatabase": 0,
            "invalid": 0,
        }
        self.chunk: dict[str, tuple[int, str, str, str]] = {}  # canonical -> line, display, ...
        self.lines = 0

    def error(self, line: int | None, scan: str | None, code: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_KEPT_LINE_ERRORS:
            self.errors.append({"line": line, "scanCode": scan, "code": code, "message": message})

    def invalid(self, line: int, scan: str | None, code: str, message: str) -> None:
        self.summary["invalid"] += 1
        self.error(line, scan, code, message)

    def add_line(self, line_no: int, text: str) -> None:
        fields = _split_line(text)
        raw_scan = fields[0].strip()
        shown = codes.display(raw_scan)[:80] or None
        canon = codes.canonical(raw_scan)
        if not codes.is_valid_canonical(canon) or len(codes.display(raw_scan)) > 80:
            self.invalid(
                line_no,
                shown,
                exc.InvalidScanCodeError.code,
                "A scan code is 4-64 letters and digits (spaces and hyphens are ignored).",
            )
            return
        raw_state = fields[1].strip() if len(fields) > 1 else ""
        state = _STATE_NAMES.get(raw_state.lower()) if raw_state else State.INACTIVE.value
        if state is None:
            self.invalid(
                line_no,
                shown,
                exc.InvalidParameterError.code,
                "codeState must be Inactive or Available.",
            )
            return
        raw_info = fields[2].strip() if len(fields) > 2 else ""
        info_json = "{}"
        if raw_info:
            try:
                info = json.loads(raw_info)
            except ValueError:
                info = None
            if not isinstance(info, dict):
                self.invalid(
                    line_no,
                    shown,
                    exc.InvalidParameterError.code,
                    "customCodeInfo must be a JSON object.",
                )
                return
            info_json = json.dumps(info, separators=(",", ":"))
            if "\\u0000" in info_json:
                # PostgreSQL's jsonb cannot store NUL; refuse the line, not the whole job.
                self.invalid(
                    line_no,
                    shown,
                    exc.InvalidParameterError.code,
                    "customCodeInfo may not contain NUL characters.",
                )
                return
            if len(info_json.encode()) > MAX_JSON_BYTES:
                self.invalid(
                    line_no,
                    shown,
                    exc.InvalidParameterError.code,
                    "customCodeInfo must be at most 16 KB of JSON.",
                )
                return
        if canon in self.chunk:
            self.duplicate_in_file(line_no, shown)
            return
        self.chunk[canon] = (line_no, codes.display(raw_scan), state, info_json)

    def duplicate_in_file(self, line_no: int, shown: str | None) -> None:
        self.summary["duplicatesInFile"] += 1
        self.error(
            line_no,
            shown,
            exc.CodeDuplicateError.code,
            "This scan code appears earlier in the file.",
        )

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
                self._insert(pending)
            Job.objects.filter(pk=self.job.pk).update(
                done=self.lines,
                errors=self.errors,
                error_count=self.error_count,
                summary=self.summary,
            )
        self.progress(self.lines, self.job.total)

    def _insert(self, pending: dict[str, tuple[int, str, str, str]]) -> None:
        if connection.vendor == "postgresql":
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
        added = _insert_codes(
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

    def _insert_then_classify(self, pending: dict[str, tuple[int, str, str, str]]) -> None:
        """Insert the chunk; look up only the codes the unique index turned away.

        An import of fresh codes then costs no duplicate query at all (the IN query over
        10,000 codes per chunk was a quarter of the import's time).
        """
        inserted = _insert_codes_postgres(
            [(display, canon, state, info) for canon, (_, display, state, info) in pending.items()],
            code_type_id=self.batch.code_type_id,
            batch_id=self.batch.pk,
            now=self.now,
            state=None,
            info=None,
            returning=True,
        )
        self.summary["imported"] += len(inserted)
        refused = [canon for canon in pending if canon not in inserted]
        if not refused:
            return
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


_STATE_NAMES = {s.lower(): s for s in (State.INACTIVE.value, State.AVAILABLE.value)}


def _decoded_lines(name: str, run: _ImportRun) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) for each physical line; undecodable lines become errors."""
    with default_storage.open(name, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                run.invalid(
                    line_no, None, exc.InvalidParameterError.code, "The line is not UTF-8 text."
                )
                run.lines = line_no
                continue
            if line_no == 1:
                text = text.removeprefix("\ufeff")
            yield line_no, text.rstrip("\r\n")


def _is_header(text: str) -> bool:
    first = text.split(",", 1)[0].strip().strip('"').lower()
    return first in {"scancode", "scan_code", "scan code"}


def _run_import(job: Job, progress: Progress) -> None:
    batch = job.batch
    if batch is None:
        raise exc.RedemptionError("The job's batch no longer exists.")
    if not job.upload or not default_storage.exists(job.upload):
        raise exc.RedemptionError("The uploaded file is missing.")
    total = _count_lines(job.upload)
    Job.objects.filter(pk=job.pk).update(total=total)
    job.total = total
    run = _ImportRun(job, batch, progress)
    chunk_size = max(1, settings.JOB_BATCH_SIZE)
    records = 0
    first = True
    try:
        since_flush = 0
        for line_no, text in _decoded_lines(job.upload, run):
            run.lines = line_no
            since_flush += 1
            if text.strip():
                is_header, first = first and _is_header(text), False
                if is_header:
                    continue
                records += 1
                run.add_line(line_no, text)
            if len(run.chunk) >= chunk_size or since_flush >= chunk_size:
                run.flush()
                since_flush = 0
        run.lines = total = max(total, run.lines)
        if not records and not run.error_count:
            run.error(
                None, None, exc.InvalidParameterError.code, "The file has no codes to import."
            )
        run.flush()
    finally:
        Batch.objects.filter(pk=batch.pk).update(quantity=run.summary["imported"])
        Job.objects.filter(pk=job.pk).update(total=total, done=run.lines)
        audit(
            actor=_job_actor(job),
            action="codes.import",
            code_type_name=job.code_type_name,
            target_id=str(batch.pk),
            details={"jobId": str(job.pk), "errors": run.error_count, **run.summary},
        )
    default_storage.delete(job.upload)


# --- export -------------------------------------------------------------------------------------


def export_rows(
    *, code_type: CodeType, state: str | None = None, batch_id: Any = None
) -> Iterator[list[str]]:
    """CSV rows (header first) of a type's codes, optionally one state or batch; streamed."""
    if state is not None and state not in STATE_ORDER:
        raise exc.invalid_fields({"state": f"must be one of {', '.join(STATE_ORDER)}"})
    if batch_id is not None:
        try:
            batch_id = uuid.UUID(str(batch_id))
        except ValueError:
            raise exc.invalid_fields({"batchId": "must be a batch id (UUID)"}) from None
        if (
            code_type.is_shared
            or not Batch.objects.filter(pk=batch_id, code_type=code_type).exists()
        ):
            raise exc.invalid_fields({"batchId": "no such batch in this code type"})
    if code_type.is_shared:
        return _export_shared(code_type, state)
    return _export_personal(code_type, state, batch_id)


def _keyset(qs, fields: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """Walk a queryset in primary-key order, one chunk per query, never holding a cursor open."""
    last = None
    while True:
        page = qs if last is None else qs.filter(pk__gt=last)
        rows = list(page.order_by("pk").values_list("pk", *fields)[:EXPORT_CHUNK_SIZE])
        yield from rows
        if len(rows) < EXPORT_CHUNK_SIZE:
            return
        last = rows[-1][0]


def _json_text(value: Any) -> str:
    return json.dumps(value or {}, separators=(",", ":"), ensure_ascii=False)


def _export_personal(ct: CodeType, state: str | None, batch_id: uuid.UUID | None):
    yield list(EXPORT_HEADER)
    qs = Code.objects.filter(code_type=ct, is_shared_anchor=False)
    if state is not None:
        qs = qs.filter(state=state)
    if batch_id is not None:
        qs = qs.filter(batch_id=batch_id)
    fields = (
        "scan_code",
        "state",
        "batch_id",
        "custom_code_info",
        "redeemed_by_profile_id",
        "redeemed_at",
        "created_at",
    )
    for _, scan, st, batch, info, profile, redeemed_at, created_at in _keyset(qs, fields):
        yield [
            scan,
            st,
            ct.name,
            str(batch) if batch else "",
            _json_text(info),
            profile or "",
            ts(redeemed_at) or "",
            ts(created_at) or "",
        ]


def _export_shared(ct: CodeType, state: str | None):
    yield list(EXPORT_HEADER)
    qs = SharedRedemption.objects.filter(code_type=ct)
    if state is not None:
        qs = qs.filter(state=state)
    fields = ("state", "custom_code_info", "profile_id", "redeemed_at", "created_at")
    for _, st, info, profile, redeemed_at, created_at in _keyset(qs, fields):
        yield [
            ct.scan_code or "",
            st,
            ct.name,
            "",
            _json_text(info),
            profile,
            ts(redeemed_at) or "",
            ts(created_at) or "",
        ]


def job_result_rows(job: Job) -> Iterator[list[str]]:
    """The codes a succeeded generate job made, as CSV rows under the header `scanCode`."""
    if job.kind != Job.Kind.GENERATE or job.status != Job.Status.SUCCEEDED or job.batch_id is None:
        raise exc.JobNotFoundError("This job has no result to download.")
    return _result_rows(job.code_type_id, job.batch_id)


def _result_rows(code_type_id: int | None, batch_id: uuid.UUID) -> Iterator[list[str]]:
    yield ["scanCode"]
    # The type narrows the walk to the (code_type, id) index; the batch filters within it.
    qs = Code.objects.filter(batch_id=batch_id)
    if code_type_id is not None:
        qs = qs.filter(code_type_id=code_type_id)
    for _, scan in _keyset(qs, ("scan_code",)):
        yield [scan]


# --- delete all / reset all ---------------------------------------------------------------------


def delete_reset_preview(*, code_type_name: str) -> dict[str, int]:
    """Per-state counts of a type's codes (shared redemptions for a shared type), one query."""
    ct = get_code_type(code_type_name)
    counts = dict.fromkeys(STATE_ORDER, 0)
    for row in _records_of(ct).values("state").annotate(n=Count("*")).order_by():
        counts[row["state"]] = row["n"]
    return counts


def _records_of(ct: CodeType):
    if ct.is_shared:
        return SharedRedemption.objects.filter(code_type=ct)
    return Code.objects.filter(code_type=ct, is_shared_anchor=False)


def _check_bulk_request(
    ct: CodeType, *, states: Any, confirm_name: Any, to_state: Any = None, reset: bool = False
) -> list[str]:
    errors: dict[str, str] = {}
    if not isinstance(confirm_name, str) or confirm_name != ct.name:
        errors["confirm"] = "type the code type's name exactly to confirm"
    if (
        not isinstance(states, list | tuple)
        or not states
        or any(s not in STATE_ORDER for s in states)
    ):
        errors["states"] = f"choose one or more of {', '.join(STATE_ORDER)}"
    if reset and to_state not in INITIAL_STATES:
        errors["toState"] = "must be Inactive or Available"
    if errors:
        raise exc.invalid_fields(errors)
    return [s for s in STATE_ORDER if s in states]


def job_delete_codes_start(
    *, actor: Actor, code_type_name: str, states: list[str], confirm_name: str
) -> Job:
    """Queue the deletion of every code of a type in the given states (SPEC §7.3)."""
    require_ops(actor)
    ct = get_code_type(code_type_name)
    chosen = _check_bulk_request(ct, states=states, confirm_name=confirm_name)
    return _start_bulk_job(
        actor=actor, ct=ct, kind=Job.Kind.DELETE_CODES, params={"states": chosen}
    )


def job_reset_codes_start(
    *, actor: Actor, code_type_name: str, states: list[str], to_state: str, confirm_name: str
) -> Job:
    """Queue the reset of every code of a type in the given states to Inactive or Available."""
    require_ops(actor)
    ct = get_code_type(code_type_name)
    chosen = _check_bulk_request(
        ct, states=states, confirm_name=confirm_name, to_state=to_state, reset=True
    )
    return _start_bulk_job(
        actor=actor,
        ct=ct,
        kind=Job.Kind.RESET_CODES,
        params={"states": chosen, "toState": to_state},
    )


def _start_bulk_job(*, actor: Actor, ct: CodeType, kind: str, params: dict[str, Any]) -> Job:
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            code_type=ct,
            code_type_name=ct.name,
            params={**params, "actor": _actor_params(actor)},
            created_by=actor.label[:200],
            created_at=timezone.now(),
        )
        _enqueue_on_commit(job)
    return job


def _run_delete_or_reset(job: Job, progress: Progress) -> None:
    ct = job.code_type
    if ct is None:
        raise exc.CodeTypeNotFoundError(details={"codeType": job.code_type_name})
    states: list[str] = job.params["states"]
    to_state: str | None = job.params.get("toState")
    base = _records_of(ct).filter(state__in=states)
    total = base.count()
    Job.objects.filter(pk=job.pk).update(total=total)
    job.total = total
    counts: Counter[str] = Counter()
    last: Any = None
    complete = False
    try:
        while True:
            for attempt in range(_DEADLOCK_RETRIES):
                try:
                    with transaction.atomic():
                        rows = _process_bulk_batch(
                            job, ct=ct, base=base, last=last, to_state=to_state
                        )
                        if rows:
                            counts.update(state for _, state in rows)
                            Job.objects.filter(pk=job.pk).update(done=sum(counts.values()))
                    break
                except OperationalError:
                    # PostgreSQL breaks a deadlock with a concurrent redeem by failing one side.
                    if attempt == _DEADLOCK_RETRIES - 1:
                        raise
                    time.sleep(0.1 * (attempt + 1))
            if not rows:
                break
            last = rows[-1][0]
            progress(sum(counts.values()), total)
        complete = True
    finally:
        done = sum(counts.values())
        # Rows can change while the job runs; a finished job reports what it did.
        Job.objects.filter(pk=job.pk).update(
            done=done, total=done if complete else max(total, done)
        )
        details: dict[str, Any] = {
            "jobId": str(job.pk),
            "states": states,
            "counts": {s: counts[s] for s in states},
            "total": done,
            "complete": complete,
        }
        if to_state:
            details["toState"] = to_state
        if ct.is_shared:
            details["sharedRedemptions"] = True
        audit(
            actor=_job_actor(job),
            action="codes.reset_all" if job.kind == Job.Kind.RESET_CODES else "codes.delete_all",
            code_type_name=ct.name,
            target_id=str(ct.pk),
            details=details,
        )


def _process_bulk_batch(
    job: Job, *, ct: CodeType, base, last: Any, to_state: str | None
) -> list[tuple[Any, str]]:
    """Lock the next batch of matching rows by key, then delete or reset them; return them."""
    page = base if last is None else base.filter(pk__gt=last)
    rows = list(
        page.select_for_update()
        .order_by("pk")
        .values_list("pk", "state")[: settings.JOB_BATCH_SIZE]
    )
    if not rows:
        return rows
    ids = [pk for pk, _ in rows]
    now = timezone.now()
    if ct.is_shared:
        # A shared code's per-profile records are deleted both by "delete" and by "reset":
        # with no record the profile may redeem again, which is what a reset means for them.
        Attempt.objects.filter(shared_id__in=ids).delete()
        _raw_delete(SharedRedemption.objects.filter(pk__in=ids))
        # Lock the type after the records (the order fulfilment uses), then recount the slots.
        CodeType.objects.select_for_update().filter(pk=ct.pk).values_list("pk", flat=True).first()
        held = SharedRedemption.objects.filter(code_type=ct, state__in=_SLOT_STATES).count()
        CodeType.objects.filter(pk=ct.pk).update(redemption_count=held)
        return rows
    Attempt.objects.filter(code_id__in=ids).delete()
    codes_qs = Code.objects.filter(pk__in=ids)
    if to_state is None:
        _raw_delete(codes_qs)
    else:
        codes_qs.update(
            state=to_state,
            redeemed_by_profile_id=None,
            redeemed_by_profile_name=None,
            redeemed_at=None,
            custom_redemption_info={},
            invalidated_at=None,
            invalidation_reason=None,
            current_attempt=0,
            activated_at=now if to_state == State.AVAILABLE else None,
            version=F("version") + 1,
            updated_at=now,
        )
    return rows


def _raw_delete(qs) -> int:
    """One DELETE statement; the caller already removed the attempts that would cascade."""
    return qs._raw_delete(qs.db)


# --- running jobs -------------------------------------------------------------------------------


def _no_progress(done: int, total: int) -> None:
    return None


_RUNNERS: dict[str, Callable[[Job, Progress], None]] = {
    Job.Kind.GENERATE: _run_generate,
    Job.Kind.IMPORT: _run_import,
    Job.Kind.DELETE_CODES: _run_delete_or_reset,
    Job.Kind.RESET_CODES: _run_delete_or_reset,
}


def _enqueue_on_commit(job: Job) -> None:
    job_id = str(job.pk)
    transaction.on_commit(lambda: _enqueue(job_id))


def _enqueue(job_id: str) -> None:
    from redemption.tasks import run_job_task

    try:
        run_job_task.enqueue(job_id)
    except Exception as err:
        logger.exception("could not queue job %s", job_id)
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.FAILED,
            finished_at=timezone.now(),
            errors=[_job_error(err, "The job could not be queued.")],
            error_count=1,
        )


def _job_error(err: BaseException, message: str | None = None) -> dict[str, Any]:
    if isinstance(err, exc.RedemptionError):
        return {"line": None, "scanCode": None, "code": err.code, "message": err.message}
    return {
        "line": None,
        "scanCode": None,
        "code": "JOB_FAILED",
        "message": message or f"The job stopped: {type(err).__name__}: {str(err)[:300]}",
    }


def run_job(job_id: Any, *, progress: Progress | None = None) -> None:
    """Run a queued job to the end; a job another process already claimed is left alone."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        logger.warning("run_job: %r is not a job id", job_id)
        return
    claimed = Job.objects.filter(pk=job_uuid, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = Job.objects.select_related("code_type", "batch").get(pk=job_uuid)
    runner = _RUNNERS.get(job.kind)
    try:
        if runner is None:
            raise exc.RedemptionError(f"Jobs of kind {job.kind!r} cannot run here.")
        runner(job, progress or _no_progress)
    except Exception as err:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        failed = Job.objects.get(pk=job.pk)
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED,
            finished_at=timezone.now(),
            errors=[*failed.errors[: MAX_KEPT_LINE_ERRORS - 1], _job_error(err)],
            error_count=failed.error_count + 1,
        )
        return
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, finished_at=timezone.now())


def job_run_here(
    job_id: Any, *, progress: Progress | None = None, poll_seconds: float = 0.5
) -> Job:
    """Run a job in this process, or wait for the worker that already claimed it; return it."""
    run_job(job_id, progress=progress)
    job = job_get(job_id)
    while not job.is_finished:
        if progress is not None:
            progress(job.done, job.total)
        time.sleep(poll_seconds)
        job = job_get(job_id)
    return job


def job_get(job_id: Any) -> Job:
    """Return the job with that id or raise exc.JobNotFoundError."""
    try:
        job_uuid = uuid.UUID(str(job_id))
    except ValueError:
        raise exc.JobNotFoundError(details={"jobId": str(job_id)}) from None
    job = Job.objects.select_related("code_type", "batch").filter(pk=job_uuid).first()
    if job is None:
        raise exc.JobNotFoundError(details={"jobId": str(job_id)})
    return job
