"""Scale-out at small scale: two app servers and two task workers, one database.

Two gunicorn processes and two `manage.py db_worker` processes run against the test database
(PostgreSQL, or the SQLite test file in WAL mode). Redeems of the same codes race through both
servers and still succeed exactly once; generate jobs queued through either server are run by
the workers.
"""

import http.client
import json
import sys
import threading
import time
from collections import Counter

import pytest
from django_tasks_db.models import DBTaskResult

from redemption.actors import Actor
from redemption.models import Batch, Code, State
from redemption.services import bulk, code_type_create, server_key_create
from tests.processes import BIN, Processes, free_port, wait_ready

CODE_TYPE = "scale-out"
CONTESTED = 20  # codes raced for
RACERS = 4  # profiles racing for each code, alternating between the two servers
JOB_QUANTITIES = (1_500, 1_000)
WORKER_IDS = ("scale-out-worker-1", "scale-out-worker-2")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cluster(transactional_db, tmp_path):
    """Two app servers (ports) and two workers on the test database; torn down afterwards."""
    procs = Processes(tmp_path)
    ports = []
    try:
        for n in (1, 2):
            port = free_port()
            procs.start(
                f"server-{n}",
                [
                    str(BIN / "gunicorn"),
                    "portal.wsgi:application",
                    "-w",
                    "1",
                    "-k",
                    "gthread",
                    "--threads",
                    "4",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                ],
            )
            ports.append(port)
        for worker_id in WORKER_IDS:
            procs.start(
                worker_id,
                [
                    sys.executable,
                    "manage.py",
                    "db_worker",
                    "--interval",
                    "0.2",
                    "--no-startup-delay",
                    "--worker-id",
                    worker_id,
                ],
            )
        for n, port in enumerate(ports, start=1):
            wait_ready(procs, f"server-{n}", port)
        yield procs, ports
    finally:
        procs.stop()


def call(port: int, method: str, path: str, key: str, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        conn.request(method, path, data, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def race_redeems(ports: list[int], key: str, scan_codes: list[str]) -> list[tuple]:
    """Every racer connects, waits at one barrier, then redeems; return (code, profile, status,
    error code, port) per call."""
    calls = [
        (scan, f"racer-{i}-{k}", ports[k % len(ports)])
        for i, scan in enumerate(scan_codes)
        for k in range(RACERS)
    ]
    gate = threading.Barrier(len(calls))
    results: list[tuple] = []
    lock = threading.Lock()

    def one(scan: str, profile_id: str, port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.connect()
            gate.wait(timeout=30)
            conn.request(
                "POST",
                "/api/v1/server/redeem",
                json.dumps({"profileId": profile_id, "scanCode": scan}),
                {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            body = json.loads(response.read())
            error = (body.get("error") or {}).get("code")
            with lock:
                results.append((scan, profile_id, response.status, error, port))
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert len(results) == len(calls), "some racers never got an answer"
    return results


def test_two_servers_and_two_workers_share_one_database(cluster):
    procs, ports = cluster
    # Given a server key and one personal code type with 200 Available codes, made here.
    system = Actor.system("scale-out test")
    _, key = server_key_create(actor=system, name="scale-out")
    code_type_create(actor=system, name=CODE_TYPE)
    _, scan_codes = bulk.codes_generate_inline(
        actor=system, code_type_name=CODE_TYPE, quantity=200, state=State.AVAILABLE
    )
    contested = scan_codes[:CONTESTED]

    # When several profiles race for each of 20 codes through both servers at once,
    results = race_redeems(ports, key, contested)

    # then each code is redeemed exactly once, by the profile its server said won.
    winners = {scan: profile for scan, profile, status, _, _ in results if status == 200}
    assert Counter(scan for scan, _, status, _, _ in results if status == 200) == Counter(
        dict.fromkeys(contested, 1)
    )
    losers = Counter((status, error) for _, _, status, error, _ in results if status != 200)
    assert losers == {(409, "REDEMPTION_CODE_REDEEMED_BY_OTHER"): CONTESTED * (RACERS - 1)}
    stored = dict(
        Code.objects.filter(code_type__name=CODE_TYPE, state=State.REDEEMED).values_list(
            "scan_code", "redeemed_by_profile_id"
        )
    )
    assert stored == winners
    assert Code.objects.filter(code_type__name=CODE_TYPE, state=State.AVAILABLE).count() == (
        200 - CONTESTED
    )

    # When two generate jobs are queued, one through each server,
    job_ids = []
    for port, quantity in zip(ports, JOB_QUANTITIES, strict=True):
        status, body = call(
            port,
            "POST",
            f"/api/v1/server/code-types/{CODE_TYPE}/generate",
            key,
            {"quantity": quantity, "codeState": "Available"},
        )
        assert status == 202, body
        job_ids.append(body["jobId"])

    # then the workers run both to success within a minute, read back through either server.
    deadline = time.monotonic() + 60
    finished: dict[str, dict] = {}
    while len(finished) < len(job_ids) and time.monotonic() < deadline:
        for n, job_id in enumerate(job_ids):
            status, body = call(ports[(n + 1) % 2], "GET", f"/api/v1/server/jobs/{job_id}", key)
            assert status == 200, body
            assert body["status"] != "failed", body
            if body["status"] == "succeeded":
                finished[job_id] = body
        time.sleep(0.3)
    assert set(finished) == set(job_ids), f"jobs not finished in 60 s: {finished}\n" + "\n".join(
        procs.log(w) for w in WORKER_IDS
    )
    for job_id, quantity in zip(job_ids, JOB_QUANTITIES, strict=True):
        assert finished[job_id]["done"] == finished[job_id]["total"] == quantity
        batch = Batch.objects.get(jobs__pk=job_id)
        assert Code.objects.filter(batch=batch, state=State.AVAILABLE).count() == quantity
    assert Code.objects.filter(code_type__name=CODE_TYPE).count() == 200 + sum(JOB_QUANTITIES)

    # Both workers were alive throughout, and the job tasks ran on them (not in a server).
    for name, proc in procs.procs.items():
        assert proc.poll() is None, f"{name} died:\n{procs.log(name)}"
    ran_on = [
        tuple(r.worker_ids) for r in DBTaskResult.objects.filter(task_path__endswith="run_job_task")
    ]
    assert len(ran_on) == len(job_ids)
    assert all(ids and set(ids) <= set(WORKER_IDS) for ids in ran_on), ran_on
