"""Bulk jobs: the raw COPY reference, then generate and import run by a real `db_worker`."""

import io
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.harness import Bench, Child, Result, log, start_worker

COPY_COLUMNS = (
    "id, code_type_id, is_shared_anchor, scan_code, canonical, state, version, custom_code_info,"
    " custom_redemption_info, batch_id, current_attempt, created_at, activated_at, updated_at"
)
RAW_TABLE = "bench_copy_raw"
INDEXED_TABLE = "bench_copy_indexed"


def system_actor():
    from redemption.actors import Actor

    return Actor.system("bench")


def ensure_code_type(name: str):
    from redemption import services
    from redemption.models import CodeType

    found = CodeType.objects.filter(name=name).first()
    return found or services.code_type_create(actor=system_actor(), name=name)


# --- reference: raw COPY ------------------------------------------------------------------------


def _copy_rows(n: int) -> bytes:
    """n rows in COPY text format, as wide as redemption_code rows of a generated 16-char code."""
    from redemption import codes

    try:  # the ids the product generates (time-ordered), where it has them
        from redemption.ids import uuid7 as new_id
    except ImportError:
        new_id = uuid.uuid4
    shape = codes.make_shape(algorithm=None, length=None, prefix=None, include_check=False)
    batch = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat()
    out = io.StringIO()
    for _ in range(n):
        display, canon = codes.generate_one(shape)
        out.write(
            f"{new_id()}\t1\tf\t{display}\t{canon}\tInactive\t1\t{{}}\t{{}}\t{batch}\t0\t"
            f"{now}\t\\N\t{now}\n"
        )
    return out.getvalue().encode()


def _timed_copy(conn: psycopg.Connection, table: str, data: bytes) -> float:
    start = time.perf_counter()
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({COPY_COLUMNS}) FROM STDIN") as copy:
        view = memoryview(data)
        for i in range(0, len(view), 1 << 20):
            copy.write(view[i : i + (1 << 20)])
    conn.commit()
    return time.perf_counter() - start


def copy_seconds(b: Bench, n: int, *, raw: bool) -> tuple[float | None, float]:
    """Seconds to COPY n code-width rows: into an unlogged table without indexes (if `raw`),
    and into a logged copy of redemption_code with every index it has (no foreign keys)."""
    log(f"copy reference: building {n:,} rows in memory (untimed)")
    data = _copy_rows(n)
    raw_seconds = None
    with psycopg.connect(b.database_url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}, {INDEXED_TABLE}")
        conn.execute(f"CREATE UNLOGGED TABLE {RAW_TABLE} (LIKE redemption_code INCLUDING DEFAULTS)")
        conn.execute(f"CREATE TABLE {INDEXED_TABLE} (LIKE redemption_code INCLUDING ALL)")
        conn.commit()
        if raw:
            log("copy reference: COPY into an unlogged table without indexes")
            raw_seconds = _timed_copy(conn, RAW_TABLE, data)
        log(f"copy reference: COPY {n:,} rows into a logged copy of redemption_code, all indexes")
        indexed = _timed_copy(conn, INDEXED_TABLE, data)
        conn.execute(f"DROP TABLE {RAW_TABLE}, {INDEXED_TABLE}")
        conn.commit()
    return raw_seconds, indexed


def copy_reference(b: Bench) -> None:
    """Time COPY of n rows into an unlogged table without indexes, and into a full code table."""
    n = b.n_generate
    raw, indexed = copy_seconds(b, n, raw=True)
    assert raw is not None
    b.facts["copy_raw_rate"] = n / raw
    b.facts["copy_indexed_rate"] = n / indexed
    b.run.add(
        Result(
            f"reference: raw COPY of {n:,} code-width rows (unlogged, no index)",
            f"{raw:.2f} s ({n / raw:,.0f} rows/s)",
        )
    )
    b.run.add(
        Result(
            f"reference: COPY of {n:,} rows into a copy of redemption_code with all its indexes",
            f"{indexed:.2f} s ({n / indexed:,.0f} rows/s)",
        )
    )


# SPEC §9: a job may take at most this many times a COPY of as many rows into a table with the
# same indexes, measured in the same run.
COPY_RATIO_TARGET = 1.5


def copy_ratio_result(b: Bench, label: str, n: int, seconds: float, unit: str) -> Result:
    """The figure for a job of n rows beside its target: ≤ 1.5× the indexed COPY of n rows."""
    indexed = b.facts.get("copy_indexed_rate")
    measured = f"{seconds:.2f} s ({n / seconds:,.0f} {unit}/s)"
    if not indexed:
        return Result(label, measured, f"≤ {COPY_RATIO_TARGET}× indexed COPY", "no copy section")
    ratio = seconds / (n / indexed)
    return Result(
        label,
        f"{measured}, {ratio:.2f}× indexed COPY",
        f"≤ {COPY_RATIO_TARGET}× indexed COPY",
        _copy_reference_text(b, n),
        ratio <= COPY_RATIO_TARGET,
    )


def _copy_reference_text(b: Bench, n: int) -> str:
    rate = b.facts.get("copy_raw_rate")
    indexed = b.facts.get("copy_indexed_rate")
    if not rate:
        return "—"
    text = f"raw COPY {n / rate:.1f} s"
    if indexed:
        text += f"; indexed COPY {n / indexed:.1f} s"
    return text


# --- jobs ---------------------------------------------------------------------------------------


def wait_job(job_id, worker: Child, *, timeout: float):
    """Poll the job row until it finishes; print progress; fail fast if the worker dies."""
    from redemption.models import Job

    deadline = time.monotonic() + timeout
    last_print = 0.0
    while True:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        if not worker.alive():
            raise RuntimeError(f"worker died during job {job_id}:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} still {job.status} after {timeout:.0f} s")
        if time.monotonic() - last_print >= 5:
            log(f"  job {job.kind}: {job.status} {job.done:,}/{job.total:,}")
            last_print = time.monotonic()
        time.sleep(0.1)


def run_generate(b: Bench, *, name: str, quantity: int, state: str | None = None):
    """Queue a generate job, let a fresh worker run it; return (seconds, peak MB, idle MB, job)."""
    from redemption.models import Code
    from redemption.services import bulk

    ensure_code_type(name)
    worker = start_worker(b.env, b.log_dir, f"worker-{name}")
    try:
        idle = worker.peak_rss_mb() or 0.0
        log(
            f"generate {quantity:,} codes in {name!r} (worker pid {worker.pid}, {idle:.0f} MB idle)"
        )
        started = time.time()
        job = bulk.job_generate_start(
            actor=system_actor(), code_type_name=name, quantity=quantity, state=state
        )
        job = wait_job(job.pk, worker, timeout=120 + quantity / 5_000)
        peak = worker.peak_rss_mb() or 0.0
    finally:
        worker.stop()
    if job.status != job.Status.SUCCEEDED:
        raise RuntimeError(f"generate job failed: {job.errors}")
    seconds = job.finished_at.timestamp() - started
    count = Code.objects.filter(batch_id=job.batch_id).count()
    if count != quantity:
        raise RuntimeError(f"generate job made {count:,} codes, not {quantity:,}")
    return seconds, peak, idle, job


def generate(b: Bench) -> None:
    n = b.n_generate
    seconds, peak, idle, _ = run_generate(b, name="bench-generate", quantity=n)
    b.facts["generate_peak_mb"] = peak
    label = f"generate {n:,} codes, job start → succeeded (db_worker)"
    b.run.add(copy_ratio_result(b, label, n, seconds, "codes"))
    b.run.add(
        Result(
            f"generate {n:,}: peak RSS of the worker (VmHWM)",
            f"{peak:.0f} MB ({idle:.0f} MB before the job)",
            "≤ 300 MB",
            "—",
            peak <= 300,
        )
    )


def _write_csv(path: Path, n: int) -> None:
    """An n-line import file: header, scan codes, state, and custom info on every 10th line."""
    from redemption import codes

    with path.open("w", encoding="utf-8") as fh:
        fh.write("scanCode,codeState,customCodeInfo\n")
        for i in range(n):
            body = codes.random_chars(16)
            scan = f"{body[:4]}-{body[4:8]}-{body[8:12]}-{body[12:]}"
            if i % 10 == 0:
                fh.write(f'{scan},Available,"{{""sku"":""SKU-{i % 97}""}}"\n')
            else:
                fh.write(f"{scan},Available\n")


def import_csv(b: Bench) -> None:
    from redemption.services import bulk

    n = b.n_import
    name = "bench-import"
    ensure_code_type(name)
    path = b.var_dir / f"import-{n}.csv"
    log(f"import: writing a {n:,}-line CSV (untimed)")
    _write_csv(path, n)
    size_mb = path.stat().st_size / 1e6
    worker = start_worker(b.env, b.log_dir, "worker-import")
    try:
        log(f"import {n:,} lines ({size_mb:.0f} MB) into {name!r} (worker pid {worker.pid})")
        started = time.time()
        with path.open("rb") as fh:
            job = bulk.job_import_start(actor=system_actor(), code_type_name=name, upload=fh)
        job = wait_job(job.pk, worker, timeout=180 + n / 5_000)
        peak = worker.peak_rss_mb() or 0.0
    finally:
        worker.stop()
        path.unlink(missing_ok=True)
    if job.status != job.Status.SUCCEEDED:
        raise RuntimeError(f"import job failed: {job.errors}")
    imported = job.summary.get("imported")
    if imported != n or job.error_count:
        raise RuntimeError(
            f"import: {imported} imported, {job.error_count} errors: {job.errors[:3]}"
        )
    seconds = job.finished_at.timestamp() - started
    label = f"import a {n:,}-line CSV, upload stored → succeeded (db_worker)"
    b.run.add(copy_ratio_result(b, label, n, seconds, "lines"))
    b.run.add(
        Result(f"import {n:,}: peak RSS of the worker (VmHWM)", f"{peak:.0f} MB", "—", "—", None)
    )
