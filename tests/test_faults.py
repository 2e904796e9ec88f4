"""Fault tests with real processes: kill -9 of a web worker and of a job worker, and a real
PostgreSQL stopped and started under load. Each prints its figures (and records them as
test properties): requests, kills, retries, codes, duplicates found, time to recover.

PostgreSQL only (deselected on the SQLite run by the `postgres` marker).
"""

import http.client
import os
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from django.db.models import Count

from redemption.actors import Actor
from redemption.models import AuditEvent, Code, Job, State
from redemption.services import bulk, code_type_create, server_key_create
from tests.processes import (
    Processes,
    ThrowawayCluster,
    children_of,
    free_port,
    gunicorn_argv,
    manage,
    request,
    wait_ready,
    worker_argv,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REDEEM = "/api/v1/server/redeem"
IN_USE = "IDEMPOTENCY_KEY_IN_USE"
# Longest an in-flight Idempotency-Key mark of a dead request blocks its retries.
MARK_TAKEOVER_SECONDS = 30


def report(record_property, name: str, figures: dict[str, Any]) -> None:
    line = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n[fault figures] {name}: {line}")
    for key, value in figures.items():
        record_property(key, value)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Load:
    """Redeems with Idempotency-Keys, retried as a careful client would, from many threads."""

    port: int
    secret: str
    deadline: float
    answers: dict[str, Answer] = field(default_factory=dict)
    sent: int = 0
    transport_errors: int = 0
    unavailable: int = 0
    in_use_waits: int = 0
    first_503_at: float | None = None
    last_503_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0

    def redeem(self, key: str, body: dict[str, Any]) -> Answer:
        """POST until an answer that is not transient; retries keep the same key and body."""
        while time.monotonic() < self.deadline:
            with self.lock:
                self.sent += 1
            try:
                status, headers, parsed = request(
                    self.port,
                    "POST",
                    REDEEM,
                    secret=self.secret,
                    body=body,
                    headers={"Idempotency-Key": key},
                    timeout=30,
                )
            # The worker died mid-request (maybe after sending its headers: IncompleteRead),
            # or the server is restarting: a careful client resends with the same key.
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.transport_errors += 1
                time.sleep(0.2)
                continue
            code = (parsed or {}).get("error", {}).get("code") if isinstance(parsed, dict) else None
            if status == 503:
                assert headers.get("retry-after", "").isdigit(), headers
                with self.lock:
                    self.unavailable += 1
                    now = time.monotonic()
                    self.first_503_at = self.first_503_at or now
                    self.last_503_at = now
                time.sleep(min(float(headers["retry-after"]), 2))
                continue
            if status == 409 and code == IN_USE:
                retry_after = int(headers["retry-after"])
                assert 1 <= retry_after <= MARK_TAKEOVER_SECONDS
                with self.lock:
                    self.in_use_waits += 1
                time.sleep(retry_after)
                continue
            answer = Answer(status, parsed, headers)
            with self.lock:
                self.answers.setdefault(key, answer)
                self.done += 1
            return answer
        raise AssertionError(f"no final answer for {key} before the deadline")

    def run(self, jobs: list[tuple[str, dict[str, Any]]], threads: int) -> None:
        shares: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(threads)]
        for n, job in enumerate(jobs):
            shares[n % threads].append(job)
        errors: list[BaseException] = []

        def work(share: list[tuple[str, dict[str, Any]]]) -> None:
            try:
                for key, body in share:
                    self.redeem(key, body)
            except BaseException as err:
                errors.append(err)

        pool = [threading.Thread(target=work, args=(s,)) for s in shares]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert not errors, errors[:3]


def contested_redeems(scan_codes: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Two profiles race for every code, each under its own Idempotency-Key."""
    return [
        (f"k-{n}-{side}", {"profileId": f"p-{n}-{side}", "scanCode": scan})
        for n, scan in enumerate(scan_codes)
        for side in ("a", "b")
    ]


def winners_by_code(
    load: Load, jobs: list[tuple[str, dict[str, Any]]]
) -> tuple[dict[str, list[str]], Counter[tuple[int, str | None]]]:
    """The profiles each code's answers name as its redeemer, and the mix of final answers."""
    winners: dict[str, list[str]] = defaultdict(list)
    outcomes: Counter[tuple[int, str | None]] = Counter()
    for key, body in jobs:
        answer = load.answers[key]
        code = answer.body.get("error", {}).get("code") if answer.status != 200 else None
        outcomes[(answer.status, code)] += 1
        if answer.status == 200 or code == "REDEMPTION_CODE_REDEEMED_BY_SELF":
            record = answer.body if answer.status == 200 else answer.body["error"]["details"]
            if answer.status == 200:
                assert record["scanCode"] == body["scanCode"]
                assert record["codeState"] == State.REDEEMED
            winners[body["scanCode"]].append(body["profileId"])
    return winners, outcomes


# --- kill -9 of a web worker under redeem load --------------------------------------------------


def test_kill_9_of_a_web_worker_under_redeem_load_loses_and_doubles_nothing(
    transactional_db, tmp_path, record_property
):
    system = Actor.system("fault test")
    _, secret = server_key_create(actor=system, name="faults")
    code_type_create(actor=system, name="kill-web")
    scan_codes: list[str] = []
    for _ in range(2):
        scan_codes += bulk.codes_generate_inline(
            actor=system, code_type_name="kill-web", quantity=300, state=State.AVAILABLE
        )[1]
    procs = Processes(tmp_path)
    port = free_port()
    try:
        server = procs.start("gunicorn", gunicorn_argv(port, workers=2, threads=4))
        wait_ready(procs, "gunicorn", port)
        jobs = contested_redeems(scan_codes)
        load = Load(port=port, secret=secret, deadline=time.monotonic() + 240)
        kills: list[int] = []

        def killer() -> None:
            for share in (0.25, 0.5, 0.75):
                while load.done < share * len(jobs) and time.monotonic() < load.deadline:
                    time.sleep(0.01)
                workers = children_of(server.pid)
                if workers:
                    os.kill(workers[0], signal.SIGKILL)
                    kills.append(workers[0])

        started = time.monotonic()
        chaos = threading.Thread(target=killer)
        chaos.start()
        load.run(jobs, threads=16)
        chaos.join()
        elapsed = time.monotonic() - started

        # Every code went to exactly one profile, the one the answers name; none twice.
        winners, outcomes = winners_by_code(load, jobs)
        duplicates = sum(1 for names in winners.values() if len(names) != 1)
        assert duplicates == 0, {k: v for k, v in winners.items() if len(v) != 1}
        assert set(winners) == set(scan_codes)
        stored = dict(
            Code.objects.filter(code_type__name="kill-web", state=State.REDEEMED).values_list(
                "scan_code", "redeemed_by_profile_id"
            )
        )
        assert stored == {scan: names[0] for scan, names in winners.items()}
        # Each Redeemed code has exactly one redeem event: nothing applied twice or half.
        events = Counter(
            AuditEvent.objects.filter(action="code.redeem", code_type_name="kill-web")
            .values_list("scan_code", flat=True)
            .order_by()
        )
        assert len(events) == len(scan_codes) and set(events.values()) == {1}
        assert set(outcomes) <= {
            (200, None),
            (409, "REDEMPTION_CODE_REDEEMED_BY_SELF"),
            (409, "REDEMPTION_CODE_REDEEMED_BY_OTHER"),
        }, outcomes

        # Retries with the same key get the first answer, byte for byte.
        replayed = 0
        for key, body in jobs:
            first = load.answers[key]
            if first.status != 200:
                continue
            status, headers, again = request(
                port, "POST", REDEEM, secret=secret, body=body, headers={"Idempotency-Key": key}
            )
            assert (status, again) == (200, first.body), key
            assert headers.get("idempotent-replayed") == "true"
            replayed += 1

        assert len(kills) == 3
        assert server.poll() is None, procs.log("gunicorn")
        assert len(children_of(server.pid)) == 2  # the master replaced the killed workers
        report(
            record_property,
            "kill -9 web worker",
            {
                "requests": load.sent,
                "keys": len(jobs),
                "kills": len(kills),
                "retries_after_transport_errors": load.transport_errors,
                "waits_on_key_in_use": load.in_use_waits,
                "codes": len(scan_codes),
                "answers_200": outcomes[(200, None)],
                "by_self_after_retry": outcomes[(409, "REDEMPTION_CODE_REDEEMED_BY_SELF")],
                "duplicates_found": duplicates,
                "replays_checked": replayed,
                "seconds": round(elapsed, 1),
            },
        )
    finally:
        procs.stop()


# --- kill -9 of a job worker mid-generate -------------------------------------------------------

GENERATE_QUANTITY = 200_000
LEASE_SECONDS = 3


def wait_for(what: str, check: Callable[[], Any], timeout: float, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}:\n{logs()}")


def test_kill_9_of_a_worker_mid_generate_is_taken_over_and_ends_exact(
    transactional_db, tmp_path, record_property
):
    procs = Processes(tmp_path)
    procs.env.update(JOB_LEASE_SECONDS=str(LEASE_SECONDS), JOB_BATCH_SIZE="5000")
    workers = {}
    try:
        for name in ("gen-worker-1", "gen-worker-2"):
            workers[name] = procs.start(name, worker_argv(name))
        system = Actor.system("fault test")
        code_type_create(actor=system, name="kill-worker")
        job = bulk.job_generate_start(
            actor=system, code_type_name="kill-worker", quantity=GENERATE_QUANTITY
        )

        def logs() -> str:
            return "\n".join(procs.log(n) for n in workers)

        def running_far_enough() -> Job | None:
            row = Job.objects.get(pk=job.pk)
            return row if row.status == "running" and row.done >= 40_000 else None

        row = wait_for("the job to be under way", running_far_enough, 120, logs)
        holder_pid = int(row.lease_owner.rsplit(":", 1)[1])
        victim = next(n for n, p in workers.items() if p.pid == holder_pid)
        os.kill(holder_pid, signal.SIGKILL)
        killed_at = time.time()
        done_at_kill = Job.objects.get(pk=job.pk).done

        def finished() -> Job | None:
            current = Job.objects.get(pk=job.pk)
            assert current.status != "failed", current.errors
            return current if current.status == "succeeded" else None

        final = wait_for("the job to finish on the other worker", finished, 180, logs)

        batch_codes = Code.objects.filter(batch_id=final.batch_id)
        count = batch_codes.count()
        distinct = batch_codes.aggregate(n=Count("canonical", distinct=True))["n"]
        assert count == distinct == GENERATE_QUANTITY
        assert final.done == final.total == GENERATE_QUANTITY
        assert final.attempts == 2
        survivor = next(n for n in workers if n != victim)
        assert [h["worker"].rsplit(":", 1)[1] for h in final.holders] == [
            str(workers[victim].pid),
            str(workers[survivor].pid),
        ]
        takeover = final.holders[1]
        taken_over_after = (
            datetime.fromisoformat(takeover["at"].replace("Z", "+00:00")).timestamp() - killed_at
        )
        assert taken_over_after <= 2 * LEASE_SECONDS, taken_over_after
        assert takeover["resumedFrom"] >= done_at_kill
        starts = AuditEvent.objects.filter(action="job.start", target_id=str(job.pk))
        assert sorted(e.details["attempt"] for e in starts) == [1, 2]
        end = AuditEvent.objects.get(action="codes.generate", target_id=str(final.batch_id))
        assert end.details["count"] == GENERATE_QUANTITY
        assert workers[survivor].poll() is None, procs.log(survivor)
        report(
            record_property,
            "kill -9 job worker mid-generate",
            {
                "codes_requested": GENERATE_QUANTITY,
                "done_at_kill": done_at_kill,
                "resumed_from": takeover["resumedFrom"],
                "kills": 1,
                "codes_in_batch": count,
                "distinct_codes": distinct,
                "duplicates_found": count - distinct,
                "taken_over_after_s": round(taken_over_after, 2),
                "lease_s": LEASE_SECONDS,
            },
        )
    finally:
        procs.stop()


# --- a throwaway PostgreSQL stopped and started under load --------------------------------------

OUTAGE_SECONDS = 6
OUTAGE_JOB_QUANTITY = 100_000


def test_postgresql_stopped_and_started_under_load_recovers_with_nothing_half_applied(
    tmp_path, record_property
):
    cluster = ThrowawayCluster().init()
    procs = Processes(tmp_path)
    try:
        cluster.start()
        cluster.psql("postgres", "CREATE DATABASE rcp_fault")
        procs.env.update(
            DATABASE_URL=cluster.url("rcp_fault"),
            SQLITE_PATH="",
            JOB_LEASE_SECONDS=str(LEASE_SECONDS),
            JOB_BATCH_SIZE="2000",
            OUTAGE_RETRY_AFTER_SECONDS="1",
            SWEEP_INTERVAL_SECONDS="2",
        )
        manage(procs.env, "migrate", "--noinput")
        secret = manage(procs.env, "create_server_key", "outage").strip()
        port = free_port()
        server = procs.start("gunicorn", gunicorn_argv(port, workers=2, threads=4))
        worker = procs.start("outage-worker", worker_argv("outage-worker"))
        wait_ready(procs, "gunicorn", port)

        def api(method: str, path: str, body: Any = None) -> Any:
            status, _, parsed = request(port, method, path, secret=secret, body=body)
            assert status in {200, 201, 202}, (status, parsed)
            return parsed

        api("POST", "/api/v1/server/code-types", {"codeType": "outage"})
        scan_codes: list[str] = []
        for _ in range(2):
            scan_codes += api(
                "POST",
                "/api/v1/server/code-types/outage/generate-inline",
                {"quantity": 400, "codeState": "Available"},
            )["generatedScanCodes"]
        jobs = contested_redeems(scan_codes)
        load = Load(port=port, secret=secret, deadline=time.monotonic() + 240)
        timeline: dict[str, float] = {}
        readyz_while_down: list[int] = []
        job: dict[str, Any] = {}

        def outage() -> None:
            while load.done < len(jobs) * 0.3 and time.monotonic() < load.deadline:
                time.sleep(0.01)
            # A generate job is under way when the database goes.
            job.update(
                api(
                    "POST",
                    "/api/v1/server/code-types/outage/generate",
                    {"quantity": OUTAGE_JOB_QUANTITY, "codeState": "Available"},
                )
            )
            while api("GET", f"/api/v1/server/jobs/{job['jobId']}")["done"] == 0:
                time.sleep(0.02)
            timeline["stop"] = time.monotonic()
            cluster.stop("fast")
            timeline["stopped"] = time.monotonic()
            while time.monotonic() < timeline["stopped"] + OUTAGE_SECONDS:
                status, headers, _ = request(port, "GET", "/readyz")
                readyz_while_down.append(status)
                assert status != 503 or headers.get("retry-after", "").isdigit()
                time.sleep(0.5)
            cluster.start()
            timeline["started"] = time.monotonic()
            while request(port, "GET", "/readyz")[0] != 200:
                time.sleep(0.05)
            timeline["ready"] = time.monotonic()

        chaos = threading.Thread(target=outage)
        chaos.start()
        load.run(jobs, threads=12)
        chaos.join()

        # The API said 503 while the database was down, and /readyz too.
        assert load.unavailable > 0
        assert readyz_while_down and set(readyz_while_down) == {503}
        # Every code went to exactly one profile; each Redeemed code has exactly one redeem
        # event and no key is left half-done (in flight) in the database.
        winners, outcomes = winners_by_code(load, jobs)
        duplicates = sum(1 for names in winners.values() if len(names) != 1)
        assert duplicates == 0, {k: v for k, v in winners.items() if len(v) != 1}
        assert set(winners) == set(scan_codes)
        rows = cluster.psql(
            "rcp_fault",
            "SELECT c.scan_code, c.redeemed_by_profile_id, "
            "(SELECT count(*) FROM redemption_auditevent a WHERE a.action = 'code.redeem' "
            " AND a.scan_code = c.scan_code) "
            "FROM redemption_code c JOIN redemption_codetype t ON t.id = c.code_type_id "
            "WHERE t.name = 'outage' AND c.state = 'Redeemed'",
        ).splitlines()
        stored = {r.split("|")[0]: r.split("|")[1] for r in rows}
        assert stored == {scan: names[0] for scan, names in winners.items()}
        assert {r.split("|")[2] for r in rows} == {"1"}
        in_flight = cluster.psql(
            "rcp_fault",
            "SELECT count(*) FROM redemption_idempotencyrecord WHERE status_code IS NULL",
        )
        assert in_flight == "0"

        # The worker lived through it and finished its job exactly (no restart of anything).
        def job_state() -> tuple[str, int, int]:
            status, done, codes = cluster.psql(
                "rcp_fault",
                "SELECT j.status, j.done, (SELECT count(*) FROM redemption_code c "
                "WHERE c.batch_id = j.batch_id) FROM redemption_job j "
                f"WHERE j.id = '{job['jobId']}'",
            ).split("|")
            return status, int(done), int(codes)

        deadline = time.monotonic() + 120
        while job_state()[0] != "succeeded" and time.monotonic() < deadline:
            assert job_state()[0] != "failed", procs.log("outage-worker")
            time.sleep(0.5)
        status, done, codes = job_state()
        assert (status, done, codes) == ("succeeded", OUTAGE_JOB_QUANTITY, OUTAGE_JOB_QUANTITY)
        assert server.poll() is None, procs.log("gunicorn")
        assert worker.poll() is None, procs.log("outage-worker")
        worker_log = procs.log("outage-worker")
        assert "database unreachable" in worker_log
        assert "database answers again" in worker_log
        assert f"job {job['jobId']}: resuming after the database came back" in worker_log
        holders = cluster.psql(
            "rcp_fault", f"SELECT attempts, done FROM redemption_job WHERE id = '{job['jobId']}'"
        )

        # The periodic work ran again after the outage: a run finished in the last 10 s. A run
        # may be under way when we look (finished_at is cleared while it runs), so look again
        # for a while; a sweep stuck since the outage never finishes and fails this.
        def seconds_since_sweep() -> float | None:
            swept_at = cluster.psql(
                "rcp_fault",
                "SELECT extract(epoch FROM now() - finished_at) FROM redemption_periodicrun "
                "WHERE name = 'housekeeping'",
            )
            return float(swept_at) if swept_at else None

        deadline = time.monotonic() + 30
        since = seconds_since_sweep()
        while (since is None or since >= 10) and time.monotonic() < deadline:
            time.sleep(0.5)
            since = seconds_since_sweep()
        assert since is not None and since < 10, procs.log("outage-worker")

        recovery = timeline["ready"] - timeline["started"]
        last_503 = round(load.last_503_at - timeline["started"], 2) if load.last_503_at else None
        report(
            record_property,
            "PostgreSQL stopped and started",
            {
                "requests": load.sent,
                "keys": len(jobs),
                "answers_503": load.unavailable,
                "retries_after_transport_errors": load.transport_errors,
                "waits_on_key_in_use": load.in_use_waits,
                "codes": len(scan_codes),
                "answers_200": outcomes[(200, None)],
                "duplicates_found": duplicates,
                "down_s": round(timeline["started"] - timeline["stop"], 1),
                "ready_after_start_s": round(recovery, 2),
                "last_503_vs_start_s": last_503,
                "job_codes": codes,
                "job_attempts_and_done": holders,
            },
        )
        assert recovery < 15
    finally:
        procs.stop()
        cluster.destroy()
