"""PgBouncer in transaction pooling mode (Debian's 1.18) in front of PostgreSQL: a real pgbouncer,
app servers and a worker behind it, many clients sharing a few server connections.

PostgreSQL only (deselected on the SQLite run by the `postgres` marker).
"""

import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from redemption.actors import Actor
from redemption.models import Attempt, AuditEvent, Code, PeriodicRun, State
from redemption.services import bulk, code_type_create, server_key_create
from tests.factories import CodeFactory
from tests.processes import (
    PgBouncer,
    Processes,
    free_port,
    gunicorn_argv,
    manage,
    request,
    wait_ready,
)
from tests.processes import worker_argv as worker_command

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bouncer(transactional_db):
    db = settings.DATABASES["default"]
    proxy = PgBouncer(
        host=db.get("HOST") or "127.0.0.1", port=int(db.get("PORT") or 5432), database=db["NAME"]
    ).start()
    yield proxy
    proxy.stop()


def hammer(url: str, *, prepare_threshold: int | None) -> list[str]:
    """Eight clients run the same statement over and over; return the errors they met."""
    errors: list[str] = []

    def client() -> None:
        with psycopg.connect(url, prepare_threshold=prepare_threshold, autocommit=True) as conn:
            for n in range(40):
                try:
                    conn.execute("SELECT %s::int + 1", [n]).fetchone()
                except psycopg.Error as err:
                    errors.append(type(err).__name__)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_pgbouncer_breaks_server_side_prepared_statements_but_not_ours(bouncer):
    # The control: psycopg preparing statements server-side fails behind transaction pooling...
    assert hammer(bouncer.url(), prepare_threshold=0)
    # ...and the settings the product uses (Django leaves prepare_threshold unset: None) do not.
    assert settings.DATABASES["default"].get("OPTIONS", {}).get("prepare_threshold") is None
    assert hammer(bouncer.url(), prepare_threshold=None) == []


def test_redeems_a_job_and_the_housekeeping_run_through_pgbouncer(bouncer, tmp_path):
    system = Actor.system("pgbouncer test")
    _, secret = server_key_create(actor=system, name="bouncer")
    code_type_create(actor=system, name="bounced")
    _, scan_codes = bulk.codes_generate_inline(
        actor=system, code_type_name="bounced", quantity=300, state=State.AVAILABLE
    )
    past = timezone.now() - timedelta(minutes=10)
    stale = CodeFactory(state="InProgress", redeemed_by_profile_id="p-1", current_attempt=1)
    Attempt.objects.create(
        code=stale, attempt=1, profile_id="p-1", started_at=past, deadline_at=past
    )
    before = bouncer.stats()
    procs = Processes(tmp_path)
    procs.env.update(DATABASE_URL=bouncer.url(), DATABASE_PGBOUNCER="1", SWEEP_INTERVAL_SECONDS="2")
    port = free_port()
    try:
        procs.start("gunicorn", gunicorn_argv(port, workers=2, threads=8))
        procs.start("bounced-worker", worker_command("bounced-worker"))
        wait_ready(procs, "gunicorn", port)

        # Redeems: two profiles race for each code, 16 clients at once.
        results: list[tuple[str, str, int]] = []
        lock = threading.Lock()
        calls = [(scan, f"p-{n}-{side}") for n, scan in enumerate(scan_codes) for side in "ab"]

        def client(share: list[tuple[str, str]]) -> None:
            for scan, profile in share:
                status, _, _ = request(
                    port,
                    "POST",
                    "/api/v1/server/redeem",
                    secret=secret,
                    body={"profileId": profile, "scanCode": scan},
                )
                with lock:
                    results.append((scan, profile, status))

        threads = [threading.Thread(target=client, args=(calls[i::16],)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        statuses = Counter(status for _, _, status in results)
        assert statuses == {200: 300, 409: 300}, statuses
        winners = {scan: profile for scan, profile, status in results if status == 200}
        stored = dict(
            Code.objects.filter(code_type__name="bounced", state=State.REDEEMED).values_list(
                "scan_code", "redeemed_by_profile_id"
            )
        )
        assert stored == winners

        # A job: the worker's COPY, temporary table and batches go through the pooler.
        status, _, body = request(
            port,
            "POST",
            "/api/v1/server/code-types/bounced/generate",
            secret=secret,
            body={"quantity": 25_000, "codeState": "Available"},
        )
        assert status == 202, body
        deadline = time.monotonic() + 90
        job: dict = {}
        while time.monotonic() < deadline:
            _, _, job = request(port, "GET", f"/api/v1/server/jobs/{body['jobId']}", secret=secret)
            if job["status"] in {"succeeded", "failed"}:
                break
            time.sleep(0.2)
        assert job["status"] == "succeeded", (job, procs.log("bounced-worker"))
        assert job["done"] == job["total"] == 25_000
        assert Code.objects.filter(code_type__name="bounced").count() == 300 + 25_000

        # The housekeeping: the command once, and the worker's periodic run.
        out = manage(procs.env, "sweep")
        assert "Swept 1 timed-out attempt(s)" in out or "Swept 0" in out
        stale.refresh_from_db()
        assert stale.state == "Failed"
        assert AuditEvent.objects.filter(action="job.start").count() == 1
        deadline = time.monotonic() + 20
        while not PeriodicRun.objects.filter(finished_at__isnull=False).exists():
            assert time.monotonic() < deadline, procs.log("bounced-worker")
            time.sleep(0.2)

        for name, proc in procs.procs.items():
            assert proc.poll() is None, f"{name} died:\n{procs.log(name)}"
        after = bouncer.stats()
        pooled = after.get("total_xact_count", 0) - before.get("total_xact_count", 0)
        assert pooled > 600, (before, after)  # the traffic really went through the pooler
    finally:
        procs.stop()
