"""The portal under load: staff pages while 16 clients redeem, over real HTTP.

Four signed-in staff sessions (each its own superuser, signed in through the login form with its
CSRF token) loop over the inventory, the biggest code type's page (its counts and first page of
codes: the 10,000,000-code type after the scale section) and the lookup of a random code, while
wrk redeems at 16 connections: first against the same gunicorn, then with the staff on a pool
of their own (the shape of deploy/portal-staff.service) beside the API pool wrk loads, on the
same cores. SPEC §9: p95 ≤ 300 ms.
"""

import random
import re
import threading
import time
from pathlib import Path
from urllib.parse import quote

import requests

from bench import loadgen
from bench.harness import Bench, Result, log, percentile, start_gunicorn, start_worker
from bench.http_bench import CLIENTS, LOAD_THREADS, PROFILES, _available_codes, _tokens
from bench.http_bench import _write_files as write_load_files

STAFF = 4
# deploy/portal-staff.service: the staff pool's shape.
STAFF_POOL_WORKERS = 2
STAFF_POOL_THREADS = 4
P95_TARGET_MS = 300
PASSWORD = "bench-Staff-pass-0123"  # noqa: S105 (a throwaway account in a throwaway database)


def _biggest_type():
    """The code type with the most codes (the scale section's, when it ran)."""
    from django.db.models import Count

    from redemption.models import CodeType

    return (
        CodeType.objects.annotate(n=Count("codes")).order_by("-n").values_list("name", "n").first()
    )


def _staff_users() -> list[str]:
    from django.contrib.auth.models import User

    names = [f"bench-staff-{i}" for i in range(STAFF)]
    for name in names:
        user = User.objects.filter(username=name).first()
        if user is None:
            User.objects.create_superuser(name, f"{name}@example.com", PASSWORD)
    return names


def _sign_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if token is None:
        raise RuntimeError("no CSRF token on the sign-in page")
    answer = session.post(
        f"{base}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in of {username} answered {answer.status_code}")
    return session


def portal(b: Bench) -> None:
    from redemption.models import Code

    found = _biggest_type()
    if found is None or found[1] < 1000:
        _available_codes("bench-portal", 100_000)
        found = _biggest_type()
    type_name, type_codes = found
    sample = list(
        Code.objects.filter(code_type__name=type_name).values_list("scan_code", flat=True)[:5000]
    )
    run_n = 4_000 * b.http_seconds  # more than the redeem rate can use up
    log(f"portal: {type_codes:,} codes in {type_name!r}; {run_n:,} codes to redeem")
    # Codes for both runs first: the worker started below would also take generate jobs.
    shared_load, separate_load = b.var_dir / "portal-load", b.var_dir / "portal-load-2"
    for load_dir, batch in (
        (shared_load, "bench-portal-redeem"),
        (separate_load, "bench-portal-redeem-2"),
    ):
        write_load_files(load_dir, _available_codes(batch, run_n), _tokens(PROFILES))
    users = _staff_users()
    # A worker runs beside the web pools as deployed (deploy/portal-worker.service, default
    # polling): its housekeeping folds the count rows the redeems append, which every inventory
    # and type page sums.
    worker = start_worker(b.env, b.log_dir, "portal-worker", interval=None)
    try:
        shared = _browse_under_load(
            b, type_name, sample, users, shared_load, separate_staff_pool=False
        )
        # The production shape of deploy/: staff pages on a pool of their own
        # (portal-staff.service) while the clients' redeems load the API pool; same host, cores.
        separate = _browse_under_load(
            b, type_name, sample, users, separate_load, separate_staff_pool=True
        )
    finally:
        worker.stop()
    _result(
        b, f"portal under load: staff pages p95 while {CLIENTS} clients redeem", shared, type_codes
    )
    _result(
        b,
        f"portal under load, staff on their own pool ({STAFF_POOL_WORKERS} workers × "
        f"{STAFF_POOL_THREADS} threads, deploy/portal-staff.service): staff pages p95 while "
        f"{CLIENTS} clients redeem on the API pool",
        separate,
        type_codes,
    )


def _browse_under_load(
    b: Bench,
    type_name: str,
    sample: list[str],
    users: list[str],
    load_dir: Path,
    *,
    separate_staff_pool: bool,
) -> dict:
    """Staff sessions browse while wrk redeems the codes in `load_dir` (once each); the
    timings per kind of page, the errors and wrk's figures."""
    label = "portal-staff" if separate_staff_pool else "portal"
    server, port = start_gunicorn(
        b.env,
        b.log_dir,
        "portal-api" if separate_staff_pool else "portal",
        "portal.wsgi:application",
        workers=b.gunicorn_workers,
        threads=b.gunicorn_threads,
    )
    staff_server, staff_port = server, port
    if separate_staff_pool:
        try:
            staff_server, staff_port = start_gunicorn(
                b.env,
                b.log_dir,
                label,
                "portal.wsgi:application",
                workers=STAFF_POOL_WORKERS,
                threads=STAFF_POOL_THREADS,
            )
        except BaseException:
            server.stop()
            raise
    base = f"http://127.0.0.1:{staff_port}"
    pages = {
        "inventory": "/design/redemption-codes/",
        "type page": f"/design/redemption-codes/{quote(type_name)}/",
    }
    timings: dict[str, list[float]] = {"inventory": [], "type page": [], "lookup": []}
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def browse(session: requests.Session) -> None:
        while not stop.is_set():
            for kind, path in [*pages.items(), ("lookup", None)]:
                if path is None:
                    path = f"/monitoring/redemption-codes/?q={quote(random.choice(sample))}"
                start = time.perf_counter()
                answer = session.get(base + path, timeout=30)
                took = (time.perf_counter() - start) * 1000
                with lock:
                    timings[kind].append(took)
                    if answer.status_code != 200:
                        errors.append(f"{kind} {answer.status_code}")

    try:
        # Signing in hashes a password (hundreds of ms by design): done before the clock starts.
        sessions = [_sign_in(base, username) for username in users]
        browsers = [threading.Thread(target=browse, args=(s,), daemon=True) for s in sessions]
        for thread in browsers:
            thread.start()
        log(f"{label}: {STAFF} staff sessions browsing while {CLIENTS} clients redeem")
        _, stats = loadgen.run_load(
            port=port,
            path="/api/v1/client/redeem",
            files_dir=load_dir,
            threads=LOAD_THREADS,
            connections=CLIENTS,
            seconds=b.http_seconds,
        )
        stop.set()
        for thread in browsers:
            thread.join(60)
    finally:
        stop.set()
        server.stop()
        if staff_server is not server:
            staff_server.stop()
    return {"timings": timings, "errors": errors, "stats": stats}


def _result(b: Bench, metric: str, run: dict, type_codes: int) -> None:
    timings, errors, stats = run["timings"], run["errors"], run["stats"]
    everything = [t for values in timings.values() for t in values]
    if not everything:
        raise RuntimeError(f"no staff page answered: {errors[:5]}")
    detail = ", ".join(
        f"{kind} {percentile(values, 95):.0f} ms ({len(values)})"
        for kind, values in timings.items()
        if values
    )
    p95 = percentile(everything, 95)
    b.run.add(
        Result(
            metric,
            f"{p95:.0f} ms (p50 {percentile(everything, 50):.0f} ms)",
            f"≤ {P95_TARGET_MS} ms",
            f"{detail}; redeems meanwhile {stats['ok_per_s']:,.0f}/s; {type_codes:,}-code type",
            p95 <= P95_TARGET_MS and not errors,
        )
    )
    if errors:
        b.run.note(f"{metric}: {len(errors)} staff pages did not answer 200: {errors[:5]}")
