"""Redeem over HTTP (gunicorn, user tokens, 16 clients) against a bare Django JSON view."""

import random
import time
from pathlib import Path

from bench import loadgen
from bench.harness import Bench, Result, log, start_gunicorn
from bench.jobs_bench import ensure_code_type, system_actor

CLIENTS = 16
LOAD_THREADS = 2
WARMUP_SECONDS = 3
PROFILES = 500
BREAKDOWN_CODES = 1_000
ASSUMED_MAX_RATE = 4_000  # redeems/s we provision fresh codes for


def _available_codes(name: str, quantity: int) -> list[str]:
    """Generate `quantity` Available codes in a fresh batch of `name`, in this process."""
    from redemption.models import Code
    from redemption.services import bulk

    ensure_code_type(name)
    job = bulk.job_generate_start(
        actor=system_actor(), code_type_name=name, quantity=quantity, state="Available"
    )
    job = bulk.job_run_here(job.pk)
    if job.status != job.Status.SUCCEEDED:
        raise RuntimeError(f"could not generate redeem codes: {job.errors}")
    return list(Code.objects.filter(batch_id=job.batch_id).values_list("scan_code", flat=True))


def _tokens(count: int) -> list[str]:
    from redemption import rules
    from redemption.services import keys

    return [
        keys.user_token_mint(
            actor=system_actor(), profile_id=f"bench-p{i}", ttl_seconds=rules.USER_TOKEN_TTL_MAX
        ).token
        for i in range(count)
    ]


def _write_files(directory: Path, scan_codes: list[str], tokens: list[str]) -> None:
    """Split codes over the load threads: codes-<n>.txt, lines "token<TAB>scanCode"."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, LOAD_THREADS + 1):
        part = scan_codes[n - 1 :: LOAD_THREADS]
        lines = (f"{random.choice(tokens)}\t{code}" for code in part)
        (directory / f"codes-{n}.txt").write_text("\n".join(lines) + "\n")


def _measure(b: Bench, app: str, path: str, warm_dir: Path, run_dir: Path, label: str):
    env = dict(b.env)
    if app.startswith("bench."):
        env["DJANGO_SETTINGS_MODULE"] = "bench.bare_settings"
    server, port = start_gunicorn(
        env, b.log_dir, label, app, workers=b.gunicorn_workers, threads=b.gunicorn_threads
    )
    try:
        common = {
            "port": port,
            "path": path,
            "threads": LOAD_THREADS,
            "connections": CLIENTS,
        }
        log(f"{label}: warm-up {WARMUP_SECONDS} s")
        _, warm = loadgen.run_load(files_dir=warm_dir, seconds=WARMUP_SECONDS, **common)
        log(f"{label}: measuring {b.http_seconds} s at {CLIENTS} connections")
        tool, stats = loadgen.run_load(files_dir=run_dir, seconds=b.http_seconds, **common)
    finally:
        server.stop()
    log(
        f"{label}: {stats['ok_per_s']:,.0f} ok/s, {stats['req_per_s']:,.0f} req/s, "
        f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, bad {stats['bad']:.0f}, "
        f"exhausted {stats['exhausted']:.0f}"
    )
    if stats["exhausted"] and not app.startswith("bench."):
        b.run.note(f"{label}: the load ran out of fresh codes ({stats['exhausted']:.0f} resent)")
    return tool, warm, stats


def _cpu_breakdown(b: Bench, scan_codes: list[str], token: str) -> None:
    """Where one redeem's CPU goes: this process (Django + service) vs its PostgreSQL backend."""
    import json

    from django.db import connection
    from django.test import Client

    from bench.harness import cpu_seconds

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(scan: str) -> None:
        response = client.post(
            "/api/v1/client/redeem", json.dumps({"scanCode": scan}), "application/json"
        )
        assert response.status_code == 200, response.content

    for scan in scan_codes[:20]:
        post(scan)
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        post(scan_codes[20])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    rest = scan_codes[21:]
    app0, db0, wall0 = time.process_time(), cpu_seconds(backend), time.perf_counter()
    for scan in rest:
        post(scan)
    app = (time.process_time() - app0) / len(rest)
    db = (cpu_seconds(backend) - db0) / len(rest)
    wall = (time.perf_counter() - wall0) / len(rest)
    b.facts["redeem_cpu_ms"] = (app + db) * 1000
    b.run.add(
        Result(
            "one redeem through Django, in process, one at a time: wall / app CPU / DB CPU",
            f"{wall * 1000:.2f} / {app * 1000:.2f} / {db * 1000:.2f} ms, "
            f"{len(statements)} SQL statements + BEGIN/COMMIT",
            "—",
            f"2 cores ⇒ at most ~{2 / (app + db):,.0f} redeems/s before HTTP and load tool",
        )
    )


def redeem(b: Bench) -> None:
    from redemption.models import Code, State

    name = "bench-redeem"
    warm_n = ASSUMED_MAX_RATE * WARMUP_SECONDS
    run_n = ASSUMED_MAX_RATE * b.http_seconds
    log(f"redeem: generating {warm_n + run_n:,} Available codes and {PROFILES} user tokens")
    scan_codes = _available_codes(name, warm_n + run_n + BREAKDOWN_CODES)
    random.shuffle(scan_codes)
    tokens = _tokens(PROFILES)
    log(f"redeem: CPU per redeem, {BREAKDOWN_CODES} redeems in this process")
    _cpu_breakdown(b, scan_codes[:BREAKDOWN_CODES], tokens[0])
    scan_codes = scan_codes[BREAKDOWN_CODES:]
    warm_dir, run_dir = b.var_dir / "load-warm", b.var_dir / "load-run"
    _write_files(warm_dir, scan_codes[:warm_n], tokens)
    _write_files(run_dir, scan_codes[warm_n:], tokens)

    _, _, bare = _measure(
        b, "bench.bare_app:application", "/bare", warm_dir, run_dir, "bare-django"
    )
    before = Code.objects.filter(code_type__name=name, state=State.REDEEMED).count()
    tool, warm, red = _measure(
        b, "portal.wsgi:application", "/api/v1/client/redeem", warm_dir, run_dir, "redeem"
    )
    redeemed = Code.objects.filter(code_type__name=name, state=State.REDEEMED).count() - before
    answered = warm["ok"] + red["ok"]
    # wrk stops with requests in flight: the server may finish up to one per connection more.
    if not answered <= redeemed <= answered + 2 * CLIENTS:
        b.run.note(
            f"redeem: clients saw {answered:.0f} successes but {redeemed} codes became Redeemed"
        )
    if red["bad"]:
        b.run.note(f"redeem: {red['bad']:.0f} non-200 answers during the measured run")

    setup = f"gunicorn -w {b.gunicorn_workers} -k gthread --threads {b.gunicorn_threads}"
    b.run.note(
        f"HTTP: {setup}; load by {tool} ({LOAD_THREADS} threads, {CLIENTS} persistent "
        f"connections, {b.http_seconds} s after a {WARMUP_SECONDS} s warm-up) on the same machine"
    )
    ratio = red["ok_per_s"] / bare["req_per_s"] if bare["req_per_s"] else 0.0
    bare_text = f"bare Django view {bare['req_per_s']:,.0f} req/s"
    b.run.add(
        Result(
            f"redeem over HTTP (client token), {CLIENTS} clients: successful redeems/s",
            f"{red['ok_per_s']:,.0f}/s",
            "≥ 600/s",
            bare_text,
            red["ok_per_s"] >= 600,
        )
    )
    b.run.add(
        Result(
            "redeem over HTTP: p99 latency (p50)",
            f"{red['p99_ms']:.1f} ms ({red['p50_ms']:.1f} ms)",
            "≤ 50 ms",
            f"bare view p99 {bare['p99_ms']:.1f} ms (p50 {bare['p50_ms']:.1f} ms)",
            red["p99_ms"] <= 50,
        )
    )
    b.run.add(
        Result(
            "redeem rate as a share of the bare Django view's rate",
            f"{ratio:.0%}",
            "≥ 40 %",
            bare_text,
            ratio >= 0.40,
        )
    )
