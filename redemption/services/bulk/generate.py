"""Generate codes: a small batch inline (returned), or a large one as a job; top up collisions."""

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from datetime import datetime
from itertools import islice
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from redemption import codes, rules
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.db import code_inserts
from redemption.models import Batch, Code, Job
from redemption.services._common import audit
from redemption.services.bulk.ahead import read_ahead
from redemption.services.bulk.jobs import JobOutcome, Progress, job_create, new_batch
from redemption.services.bulk.leases import Lease
from redemption.services.bulk.options import prepare_generation

# A chunk that inserts nothing this many times in a row means the code space is exhausted.
_MAX_FRUITLESS_ROUNDS = 20

# Random codes drawn at a time.
_DRAW = 10_000
# Chunks the reader thread may have drawn while one is inserted.
_CHUNKS_AHEAD = 2

Candidates = Iterator[tuple[str, str]]


class Drawn(NamedTuple):
    """A chunk of candidates drawn ahead: canonical -> display, and their COPY text if made."""

    codes: dict[str, str]
    copy_text: str | None


def random_candidates(shape: codes.CodeShape) -> Candidates:
    """An endless stream of (display, canonical) codes of the given shape."""
    while True:
        yield from codes.generate(shape, _DRAW)


def drawn_chunks(
    candidates: Iterable[tuple[str, str]], *, size: int, layout: code_inserts.CopyLayout | None
) -> Iterator[Drawn]:
    """Cut `candidates` into chunks of `size` distinct codes, each with its COPY text when a
    `layout` is given. No database work: made in a reader thread while a chunk goes in."""
    stream = iter(candidates)
    while chunk := _distinct(stream, size):
        rows = [(display, canon) for canon, display in chunk.items()]
        yield Drawn(chunk, layout.text(rows) if layout is not None else None)


def _distinct(stream: Iterator[tuple[str, str]], count: int) -> dict[str, str]:
    """Up to `count` distinct codes drawn from `stream`: canonical -> display (the first)."""
    chunk: dict[str, str] = {}
    for display, canon in stream:
        chunk.setdefault(canon, display)
        if len(chunk) >= count:
            break
    return chunk


def _info_json(custom_code_info: dict[str, Any]) -> str:
    return json.dumps(custom_code_info, separators=(",", ":"))


def batch_fill(
    *,
    batch: Batch,
    quantity: int,
    state: str,
    custom_code_info: dict[str, Any],
    candidates: Iterable[tuple[str, str]] = (),
    drawn: Iterator[Drawn] | None = None,
    on_chunk: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> int:
    """Insert codes from `candidates` into `batch` until it holds `quantity`; return the count.

    Candidates that collide with any existing code (or with each other) are skipped and more
    are drawn: the top-up. Each chunk commits on its own; `on_chunk(done)` runs inside that
    chunk's transaction so progress and codes commit together. `drawn`, instead of
    `candidates`: chunks cut ahead by `drawn_chunks` (with the same `now`, state and info).
    """
    now = now or timezone.now()
    stream = iter(candidates)
    info_json = _info_json(custom_code_info)
    chunk_size = max(1, settings.JOB_BATCH_SIZE)
    done = Code.objects.filter(batch=batch).count()
    fruitless = 0
    # Straight COPY until a chunk collides; after that, collisions are likely (a small code
    # space), so the chunks take the staging path at once.
    direct = True
    while done < quantity:
        want = min(chunk_size, quantity - done)
        chunk: dict[str, str] = {}
        copy_text = None
        if drawn is not None:
            chunk, copy_text = next(drawn, ({}, None))
            if len(chunk) > want:  # the last chunk: its text is for more codes than it takes
                chunk, copy_text = dict(islice(chunk.items(), want)), None
        else:
            chunk = _distinct(stream, want)
        if not chunk:
            raise exc.InsufficientCodeSpaceError(
                "Ran out of candidate codes before the batch was full."
            )
        with transaction.atomic():
            added = code_inserts.codes_insert(
                [(display, canon) for canon, display in chunk.items()],
                code_type_id=batch.code_type_id,
                batch_id=batch.pk,
                now=now,
                state=state,
                info_json=info_json,
                direct=direct,
                copy_text=copy_text,
            )
            done += added
            if on_chunk is not None:
                on_chunk(done)
        direct = direct and added == len(chunk)
        fruitless = 0 if added else fruitless + 1
        if fruitless >= _MAX_FRUITLESS_ROUNDS:
            raise exc.InsufficientCodeSpaceError()
    return done


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
    """Generate up to rules.INLINE_QUANTITY_MAX codes in one batch and return them."""
    ct, quantity, state, info, shape = prepare_generation(
        actor=actor,
        code_type_name=code_type_name,
        quantity=quantity,
        limit=rules.INLINE_QUANTITY_MAX,
        state=state,
        custom_code_info=custom_code_info,
        prefix=prefix,
        algorithm=algorithm,
        algorithm_details=algorithm_details,
    )
    now = timezone.now()
    with transaction.atomic():
        batch = new_batch(
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
    """Validate a generation request, then queue it as a job (up to rules.JOB_QUANTITY_MAX)."""
    ct, quantity, state, info, shape = prepare_generation(
        actor=actor,
        code_type_name=code_type_name,
        quantity=quantity,
        limit=rules.JOB_QUANTITY_MAX,
        state=state,
        custom_code_info=custom_code_info,
        prefix=prefix,
        algorithm=algorithm,
        algorithm_details=algorithm_details,
    )
    now = timezone.now()
    with transaction.atomic():
        batch = new_batch(
            ct=ct, kind=Batch.Kind.GENERATE, actor=actor, now=now, quantity=quantity, shape=shape
        )
        return job_create(
            actor=actor,
            ct=ct,
            kind=Job.Kind.GENERATE,
            params={
                "state": state,
                "customCodeInfo": info,
                "algorithm": shape.algorithm,
                "length": shape.length,
                "prefix": shape.prefix,
                "includeCheck": shape.include_check,
            },
            now=now,
            batch=batch,
            total=quantity,
        )


def _generate_details(*, batch: Batch, count: int, state: str) -> dict[str, Any]:
    return {
        "count": count,
        "batchId": str(batch.pk),
        "state": state,
        "algorithm": batch.algorithm,
        "prefix": batch.prefix,
        "length": batch.length,
        "includeCheck": batch.include_check,
    }


def _audit_generate(
    *,
    actor: Actor,
    batch: Batch,
    count: int,
    state: str,
    now: datetime | None = None,
) -> None:
    audit(
        actor=actor,
        action="codes.generate",
        code_type_name=batch.code_type.name,
        target_id=str(batch.pk),
        details=_generate_details(batch=batch, count=count, state=state),
        at=now,
    )


def run_generate(job: Job, lease: Lease, progress: Progress) -> None:
    """Fill a generate job's batch; each chunk commits with its progress and lease renewal.

    A job taken over resumes from the codes its batch already holds.
    """
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
        lease.renew(done=done)
        progress(done, job.total)

    now = timezone.now()
    layout = code_inserts.ahead_layout(
        code_type_id=batch.code_type_id,
        batch_id=batch.pk,
        now=now,
        state=p["state"],
        info_json=_info_json(p["customCodeInfo"]),
    )
    # Draw the next chunks, and write their COPY text, while the database takes this one.
    chunks = drawn_chunks(
        random_candidates(shape), size=max(1, settings.JOB_BATCH_SIZE), layout=layout
    )
    with closing(read_ahead(chunks, block=1, depth=_CHUNKS_AHEAD)) as drawn:
        batch_fill(
            batch=batch,
            quantity=job.total,
            state=p["state"],
            custom_code_info=p["customCodeInfo"],
            drawn=drawn,
            on_chunk=on_chunk,
            now=now,
        )


def generate_outcome(job: Job, complete: bool) -> JobOutcome:
    """The end audit event of a generate job: how many codes its batch holds."""
    batch = job.batch
    if batch is None:
        return JobOutcome("codes.generate", "", {"count": 0, "complete": False})
    count = Code.objects.filter(batch=batch).count()
    details = _generate_details(batch=batch, count=count, state=job.params.get("state", ""))
    return JobOutcome("codes.generate", str(batch.pk), {**details, "complete": complete})
