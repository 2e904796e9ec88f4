"""Redeem over HTTP (gunicorn, user tokens, 16 clients) against a bare Django JSON view."""

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import cpu_split, loadgen
from bench.harness import ROOT, Bench, Result, log, start_gunicorn
from bench.jobs_bench import ensure_code_type, system_actor

CLIENTS = 16
LOAD_THREADS = 2
WARMUP_SECONDS = 3
SPREAD_AFTER_SECONDS = 2  # into the measured run: when the connections per worker are counted
PROFILES = 500
BREAKDOWN_CODES = 1_000
ASSUMED_MAX_RATE = 4_000  # redeems/s we provision fresh codes for
# SPEC §9, measured against the bare view in the same run.
RATE_SHARE_TARGET = 0.40
P99_FACTOR_TARGET = 2.0


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


def _codes_and_tokens(section: str, name: str, quantity: int) -> tuple[list[str], list[str]]:
    """Fresh Available codes of `name` in random order, and PROFILES user tokens."""
    log(f"{section}: generating {quantity:,} Available codes and {PROFILES} user tokens")
    scan_codes = _available_codes(name, quantity)
    random.shuffle(scan_codes)
    return scan_codes, _tokens(PROFILES)


def _backend_pid() -> int:
    """The PostgreSQL backend serving this process's connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _write_files(directory: Path, scan_codes: list[str], tokens: list[str]) -> None:
    """Split codes over the load threads: codes-<n>.txt, lines "token<TAB>scanCode"."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, LOAD_THREADS + 1):
        part = scan_codes[n - 1 :: LOAD_THREADS]
        lines = (f"{random.choice(tokens)}\t{code}" for code in part)
        (directory / f"codes-{n}.txt").write_text("\n".join(lines) + "\n")


def _measure(
    b: Bench,
    app: str,
    path: str,
    warm_dir: Path,
    run_dir: Path,
    label: str,
    *,
    env: dict[str, str] | None = None,
    split: bool = False,
    watch: bool = False,
):
    """Serve `app` with gunicorn, warm it up, then load it for the measured seconds.

    With `split`, the CPU of the measured seconds is split per process group and, inside one
    worker, per kind of code (bench/cpu_split.py); the shares land in stats["split"]. With
    `watch`, only per process group (no py-spy): stats["cpu"].
    """
    env = dict(env or b.env)
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
        spy = cpu = None
        if split:
            workers = cpu_split.worker_pids(server.pid)
            spy = cpu_split.PySpy(workers[0], b.http_seconds, b.log_dir / f"{label}.pyspy.txt")
            cpu = cpu_split.CpuWatch(server.pid, exclude=spy.pids())
        elif watch:
            cpu = cpu_split.CpuWatch(server.pid)
        spread: list[list[int]] = []
        sampler = threading.Timer(
            SPREAD_AFTER_SECONDS,
            lambda: spread.append(cpu_split.connections_per_worker(server.pid, port)),
        )
        sampler.start()
        tool, stats = loadgen.run_load(files_dir=run_dir, seconds=b.http_seconds, **common)
        sampler.cancel()
        sampler.join()
        stats["spread"] = "/".join(map(str, spread[0])) if spread else "?"
        if cpu is not None and spy is not None:
            stats["split"] = {"processes": cpu.stop(), "python": spy.shares()}
        elif cpu is not None:
            stats["cpu"] = cpu.stop()
    finally:
        server.stop()
    log(
        f"{label}: {stats['ok_per_s']:,.0f} ok/s, {stats['req_per_s']:,.0f} req/s, "
        f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, bad {stats['bad']:.0f}, "
        f"exhausted {stats['exhausted']:.0f}, connections per worker {stats['spread']}"
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
    backend = _backend_pid()
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
    # Fresh codes for the measured run and, as many again, for the CPU split's own run.
    quantity = 2 * (warm_n + run_n) + BREAKDOWN_CODES
    scan_codes, tokens = _codes_and_tokens("redeem", name, quantity)
    log(f"redeem: CPU per redeem, {BREAKDOWN_CODES} redeems in this process")
    _cpu_breakdown(b, scan_codes[:BREAKDOWN_CODES], tokens[0])
    scan_codes = scan_codes[BREAKDOWN_CODES:]
    warm_dir, run_dir = b.var_dir / "load-warm", b.var_dir / "load-run"
    _write_files(warm_dir, scan_codes[:warm_n], tokens)
    _write_files(run_dir, scan_codes[warm_n : warm_n + run_n], tokens)
    scan_codes = scan_codes[warm_n + run_n :]
    split_warm_dir, split_run_dir = b.var_dir / "split-warm", b.var_dir / "split-run"
    _write_files(split_warm_dir, scan_codes[:warm_n], tokens)
    _write_files(split_run_dir, scan_codes[warm_n:], tokens)

    _, _, bare = _measure(
        b, "bench.bare_app:application", "/bare", warm_dir, run_dir, "bare-django"
    )
    b.facts["bare"] = bare
    before = Code.objects.filter(code_type__name=name, state=State.REDEEMED).count()
    tool, warm, red = _measure(
        b,
        "portal.wsgi:application",
        "/api/v1/client/redeem",
        warm_dir,
        run_dir,
        "redeem",
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
    # The CPU split in a run of its own: py-spy takes about a tenth of a core, which the bare
    # view's run did not pay, so the run compared with it goes without.
    _, _, spied = _measure(
        b,
        "portal.wsgi:application",
        "/api/v1/client/redeem",
        split_warm_dir,
        split_run_dir,
        "redeem-split",
        split=True,
    )

    setup = f"gunicorn -w {b.gunicorn_workers} -k gthread --threads {b.gunicorn_threads}"
    b.run.note(
        f"HTTP: {setup}; load by {tool} ({LOAD_THREADS} threads, {CLIENTS} persistent "
        f"connections, {b.http_seconds} s after a {WARMUP_SECONDS} s warm-up) on the same machine; "
        f"connections per worker {SPREAD_AFTER_SECONDS} s into the measured run: bare view "
        f"{bare['spread']}, redeem {red['spread']}, split run {spied['spread']}"
    )
    _rate_results(b, "PostgreSQL", red, bare)
    _split_result(b, spied)


def _rate_results(b: Bench, database: str, red: dict, bare: dict) -> None:
    """Redeems/s and p99 beside the bare view's, against SPEC §9's ratios."""
    ratio = red["ok_per_s"] / bare["req_per_s"] if bare["req_per_s"] else 0.0
    bare_text = f"bare Django view {bare['req_per_s']:,.0f} req/s"
    b.run.add(
        Result(
            f"redeem over HTTP (client token), {CLIENTS} clients, {database}: redeems/s",
            f"{red['ok_per_s']:,.0f}/s",
            "—",
            bare_text,
        )
    )
    b.run.add(
        Result(
            f"redeem rate as a share of the bare Django view's rate ({database})",
            f"{ratio:.0%}",
            f"≥ {RATE_SHARE_TARGET:.0%}",
            bare_text,
            ratio >= RATE_SHARE_TARGET,
        )
    )
    limit = P99_FACTOR_TARGET * bare["p99_ms"]
    b.run.add(
        Result(
            f"redeem over HTTP: p99 latency (p50), {database}",
            f"{red['p99_ms']:.1f} ms ({red['p50_ms']:.1f} ms)",
            f"≤ {P99_FACTOR_TARGET:g}× bare p99 = {limit:.1f} ms",
            f"bare view p99 {bare['p99_ms']:.1f} ms (p50 {bare['p50_ms']:.1f} ms)",
            red["p99_ms"] <= limit,
        )
    )


def _split_result(b: Bench, red: dict) -> None:
    """CPU per successful redeem: app server (split by py-spy), PostgreSQL, load tool."""
    split = red.get("split")
    if not split or not red["ok"]:
        return
    per = {k: v / red["ok"] * 1000 for k, v in split["processes"].items()}
    text = (
        f"app server {per['app server']:.2f} ms, PostgreSQL {per['PostgreSQL']:.2f} ms, "
        f"load tool {per['load']:.2f} ms"
    )
    shares = split["python"]
    if shares:
        app = per["app server"]
        text += " — app server: " + ", ".join(
            f"{group} {shares[group] * app:.2f} ms" for group in cpu_split.GROUPS
        )
        b.facts["redeem_split"] = {"per": per, "shares": shares}
    b.run.add(
        Result(
            "where one redeem's CPU goes over HTTP (PostgreSQL run; py-spy leaf frames)",
            text,
            "—",
            f"a run of its own, {red['ok_per_s']:,.0f} redeems/s with py-spy on one worker;"
            " 2 cores = 2,000 ms of CPU per second",
        )
    )


# --- PostgreSQL on cores of its own -------------------------------------------------------------


def redeem_pinned(b: Bench) -> None:
    """The redeem and the bare view again, with PostgreSQL on cores the app server does not use.

    What PostgreSQL on a host of its own would give, on this machine: the server's processes
    on the upper half of the cores, gunicorn and wrk on the lower half, for both runs. For
    information only: SPEC §9's ratios are judged in the `redeem` section, on shared cores.
    """
    name = "bench-redeem-pinned"
    warm_n = ASSUMED_MAX_RATE * WARMUP_SECONDS
    run_n = ASSUMED_MAX_RATE * b.http_seconds
    scan_codes, tokens = _codes_and_tokens("redeem-pinned", name, warm_n + run_n)
    warm_dir, run_dir = b.var_dir / "pinned-warm", b.var_dir / "pinned-run"
    _write_files(warm_dir, scan_codes[:warm_n], tokens)
    _write_files(run_dir, scan_codes[warm_n:], tokens)
    try:
        with cpu_split.postgres_on_cores_of_its_own(_backend_pid()) as (app_cores, db_cores):
            cores = (
                f"PostgreSQL on core(s) {_cores(db_cores)}, gunicorn and wrk on {_cores(app_cores)}"
            )
            log(f"redeem-pinned: {cores}")
            _, _, bare = _measure(
                b, "bench.bare_app:application", "/bare", warm_dir, run_dir, "pinned-bare"
            )
            _, _, red = _measure(
                b,
                "portal.wsgi:application",
                "/api/v1/client/redeem",
                warm_dir,
                run_dir,
                "pinned-redeem",
                watch=True,
            )
    except cpu_split.CoresUnavailable as why:
        b.run.note(f"redeem-pinned: not measured: {why}")
        return
    if red["bad"]:
        b.run.note(f"redeem-pinned: {red['bad']:.0f} non-200 answers during the measured run")
    busy = red["cpu"]["PostgreSQL"] / (b.http_seconds * len(db_cores))
    ratio = red["ok_per_s"] / bare["req_per_s"] if bare["req_per_s"] else 0.0
    factor = red["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else 0.0
    b.run.note(
        f"redeem-pinned: {cores}; connections per worker: bare view {bare['spread']}, "
        f"redeem {red['spread']}"
    )
    b.run.add(
        Result(
            "redeem with PostgreSQL on cores of its own: share of the bare view's rate there",
            f"{ratio:.0%} ({red['ok_per_s']:,.0f} of {bare['req_per_s']:,.0f}/s)",
            "— (judged on shared cores, above)",
            f"{cores}; PostgreSQL's cores {busy:.0%} busy",
        )
    )
    b.run.add(
        Result(
            "redeem with PostgreSQL on cores of its own: p99 latency (p50)",
            f"{red['p99_ms']:.1f} ms ({red['p50_ms']:.1f} ms), {factor:.1f}× the bare view's",
            "— (judged on shared cores, above)",
            f"bare view there p99 {bare['p99_ms']:.1f} ms (p50 {bare['p50_ms']:.1f} ms)",
        )
    )


def _cores(cores: list[int]) -> str:
    return ",".join(map(str, cores))


# --- SQLite, the embedded default -------------------------------------------------------------

SQLITE_RATE_TARGET = 400
SQLITE_P99_TARGET_MS = 100


def redeem_sqlite(b: Bench) -> None:
    """The same load against the same stack on SQLite (a file in the bench's directory)."""
    env = {k: v for k, v in b.env.items() if k != "DATABASE_URL"}
    env["SQLITE_PATH"] = str(b.var_dir / "bench.sqlite3")
    files = b.var_dir / "sqlite-load"
    rate = SQLITE_RATE_TARGET * 3  # provision for three times the target
    warm_n, run_n = rate * WARMUP_SECONDS, rate * b.http_seconds
    log(f"redeem on SQLite: migrating and generating {warm_n + run_n:,} codes (untimed)")
    subprocess.run(
        [sys.executable, "-m", "bench.sqlite_prep", str(files), str(warm_n), str(run_n)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    bare = b.facts.get("bare")
    if bare is None:
        _, _, bare = _measure(
            b, "bench.bare_app:application", "/bare", files / "warm", files / "run", "bare-django"
        )
    _, _, red = _measure(
        b,
        "portal.wsgi:application",
        "/api/v1/client/redeem",
        files / "warm",
        files / "run",
        "redeem-sqlite",
        env=env,
    )
    b.run.note(f"redeem-sqlite: connections per worker {red['spread']}")
    locked = (
        (b.log_dir / "redeem-sqlite.log").read_text(errors="replace").count("database is locked")
    )
    b.run.add(
        Result(
            f"redeem over HTTP (client token), {CLIENTS} clients, SQLite: redeems/s",
            f"{red['ok_per_s']:,.0f}/s",
            f"≥ {SQLITE_RATE_TARGET}/s",
            f"bare Django view {bare['req_per_s']:,.0f} req/s",
            red["ok_per_s"] >= SQLITE_RATE_TARGET,
        )
    )
    b.run.add(
        Result(
            "redeem over HTTP on SQLite: p99 latency (p50)",
            f"{red['p99_ms']:.1f} ms ({red['p50_ms']:.1f} ms)",
            f"≤ {SQLITE_P99_TARGET_MS} ms",
            f"bare view p99 {bare['p99_ms']:.1f} ms",
            red["p99_ms"] <= SQLITE_P99_TARGET_MS,
        )
    )
    b.run.add(
        Result(
            "redeem on SQLite: non-200 answers / 'database is locked' in the server log",
            f"{red['bad']:.0f} / {locked}",
            "0 / 0",
            "—",
            red["bad"] == 0 and locked == 0,
        )
    )
