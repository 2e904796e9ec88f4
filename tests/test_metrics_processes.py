"""/metrics and the logs of real processes: gunicorn (gunicorn.conf.py, two workers) + db_worker.

Every process writes its own figures; a scrape of any worker must add them all up, and keep
them when a worker or the job worker is restarted. With LOG_FORMAT=json every line either
process writes is one JSON object, and what is written for a request carries its id.
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.models import Job, State
from redemption.services import bulk, server_key_create
from tests.factories import CodeFactory, CodeTypeFactory
from tests.fulfilment import ACCEPTED, DONE, add_code, make_type
from tests.processes import BIN, Children, children_of, database_env, free_port, running, wait_http
from tests.test_metrics import parse, value

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "process-scrape-token-42"
# Enough codes to keep redeeming until both workers have served some: on a busy machine the
# second worker may still be starting while the first answers the early requests.
PLAIN_REDEEMS = 160


def call(port: int, method: str, path: str, *, key: str | None = None, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = dict(headers or {})
        if key:
            sent["Authorization"] = f"Bearer {key}"
        data = None
        if body is not None:
            sent["Content-Type"] = "application/json"
            data = json.dumps(body)
        conn.request(method, path, data, sent)
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


def scrape(port: int):
    status, body, _ = call(port, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body[:500]
    return parse(body.decode())


def redeem_call(port: int, key: str, scan: str, profile: str) -> int:
    status, _, _ = call(
        port,
        "POST",
        "/api/v1/server/redeem",
        key=key,
        body={"scanCode": scan, "profileId": profile},
    )
    return status


def worker_redeems(metrics_dir: Path, pid: int) -> float:
    """How many successful redeems the file of process `pid` holds."""
    path = metrics_dir / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    return sum(
        amount
        for key, amount, _ts, _pos in MmapedDict.read_all_values_from_file(str(path))
        if json.loads(key)[1] == "redemption_redeems_total"
        and json.loads(key)[2]["outcome"] == "ok"
    )


@pytest.fixture
def cluster(tmp_path):
    """gunicorn with two workers and a db_worker, sharing one metrics directory; JSON logs."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        **database_env(),
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
        "LOG_FORMAT": "json",
        "REDEEM_MAX_FAILED_PER_PROFILE": "2",
        "FULFILLMENT_ALLOW_PRIVATE_NETWORKS": "true",
        "PYTHONUNBUFFERED": "1",
    }
    children = Children(tmp_path, env)
    port = free_port()
    children.start(
        "web",
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="4",
        GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}",
    )
    children.start(
        "worker",
        [sys.executable, "manage.py", "db_worker", "--interval", "0.2", "--no-startup-delay"],
    )
    try:
        wait_http(children, "web", port)
        yield children, port, metrics_dir
    finally:
        children.stop()


def _redeem_on_both_workers(port: int, key: str, scans: list[str], metrics_dir: Path, workers):
    """Redeem every code from parallel connections until both workers have served some."""
    statuses: list[int] = []
    lock = threading.Lock()
    pending = list(scans)
    while pending:
        batch, pending = pending[:8], pending[8:]

        def one(scan: str) -> None:
            status = redeem_call(port, key, scan, f"p-{scan}")
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=one, args=(scan,)) for scan in batch]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if all(worker_redeems(metrics_dir, pid) for pid in workers) and len(statuses) >= 8:
            break
    return statuses


def test_metrics_add_up_across_workers_and_survive_restarts(cluster, webhook):
    children, port, metrics_dir = cluster
    _, key = server_key_create(actor=Actor.system("test"), name="metrics test")
    plain = CodeTypeFactory()
    scans = [
        CodeFactory(code_type=plain, state=State.AVAILABLE).scan_code for _ in range(PLAIN_REDEEMS)
    ]
    webhook.behaviour = lambda request: (200, ACCEPTED if request["async"] else DONE)
    synced = add_code(make_type(webhook.url)).scan_code
    pending_scan = add_code(make_type(webhook.url, is_async=True)).scan_code
    web_workers = children_of(children.procs["web"].pid)
    assert len(web_workers) == 2

    # Given redeems of every outcome, spread over both web workers, a webhook call of each
    # kind and a generate job run by the db_worker,
    statuses = _redeem_on_both_workers(port, key, scans, metrics_dir, web_workers)
    assert set(statuses) == {200}
    assert all(worker_redeems(metrics_dir, pid) > 0 for pid in web_workers), "one worker idle"
    ok = len(statuses)
    assert redeem_call(port, key, scans[0], "p-someone-else") == 409
    assert redeem_call(port, key, synced, "p-sync") == 200
    assert redeem_call(port, key, pending_scan, "p-async") == 202
    for _ in range(2):
        assert redeem_call(port, key, "NO-SUCH-CODE-1", "p-guess") == 404
    assert redeem_call(port, key, "NO-SUCH-CODE-1", "p-guess") == 429
    status, body, _ = call(
        port,
        "POST",
        f"/api/v1/server/code-types/{plain.name}/generate",
        key=key,
        body={"quantity": 10},
    )
    assert status == 202, body
    deadline = time.monotonic() + 60
    while Job.objects.exclude(status=Job.Status.SUCCEEDED).exists() or not Job.objects.exists():
        assert time.monotonic() < deadline, children.log("worker")[-3000:]
        time.sleep(0.2)

    # When /metrics is scraped (through either worker),
    first = scrape(port)

    # Then it reports the sum of every process's figures.
    redeems = "redemption_redeems_total"
    expected = {
        (redeems, (("outcome", "ok"), ("reason", ""))): ok + 1,
        (redeems, (("outcome", "in_progress"), ("reason", ""))): 1,
        (redeems, (("outcome", "error"), ("reason", exc.RedeemedByOtherError.code))): 1,
        (redeems, (("outcome", "error"), ("reason", exc.CodeNotFoundError.code))): 2,
        (redeems, (("outcome", "error"), ("reason", exc.MaxFailedExceededError.code))): 1,
        ("redemption_webhook_calls_total", (("result", "success"),)): 1,
        ("redemption_webhook_calls_total", (("result", "pending"),)): 1,
        ("redemption_webhook_call_duration_seconds_count", (("result", "success"),)): 1,
        ("redemption_webhook_call_duration_seconds_count", (("result", "pending"),)): 1,
        ("redemption_jobs_total", (("kind", "generate"), ("status", "queued"))): 1,
        ("redemption_jobs_total", (("kind", "generate"), ("status", "running"))): 1,
        ("redemption_jobs_total", (("kind", "generate"), ("status", "succeeded"))): 1,
        ("redemption_rate_limit_refusals_total", (("limit", "redeem_profile"),)): 1,
    }

    def figures(samples):
        return {key: value(samples, key[0], **dict(key[1])) for key in expected}

    assert figures(first) == expected
    assert sum(worker_redeems(metrics_dir, pid) for pid in web_workers) == ok + 1

    # When a web worker is restarted by gunicorn and the job worker is stopped,
    os.kill(web_workers[0], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while running(web_workers[0]) or len(children_of(children.procs["web"].pid)) < 2:
        assert time.monotonic() < deadline, children.log("web")[-3000:]
        time.sleep(0.1)
    worker = children.procs["worker"]
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=30)

    # Then the figures they wrote stay, folded into the archive, and new redeems add to them.
    assert not (metrics_dir / f"counter_{web_workers[0]}.db").exists()
    assert (metrics_dir / "counter_archive.db").exists()
    assert figures(scrape(port)) == expected
    assert not (metrics_dir / f"counter_{worker.pid}.db").exists()
    fresh = CodeFactory(code_type=plain, state=State.AVAILABLE).scan_code
    assert redeem_call(port, key, fresh, "p-after") == 200
    after = scrape(port)
    assert value(after, redeems, outcome="ok", reason="") == ok + 2


def test_json_logs_name_the_request_and_mask_scan_codes(cluster):
    children, port, _ = cluster
    _, key = server_key_create(actor=Actor.system("test"), name="logs test")
    live = CodeFactory(code_type=CodeTypeFactory(), state=State.INACTIVE)

    # Given a request with its own id that fails on a live code's path, and one without an id,
    status, _, headers = call(
        port,
        "POST",
        f"/api/v1/server/codes/{live.scan_code}/invalidate",
        key=key,
        body={"reason": 7},
        headers={"X-Request-Id": "trace.abc-123"},
    )
    assert status == 400 and headers["X-Request-Id"] == "trace.abc-123"
    status, _, headers = call(port, "GET", "/healthz?token=hidden-query")
    fresh_id = headers["X-Request-Id"]
    assert status == 200 and len(fresh_id) == 32

    # When the access log has been written,
    deadline = time.monotonic() + 10

    # Two workers flush their access lines independently: wait for both requests' access lines.
    def access_lines_written() -> bool:
        access = [line for line in children.log("web").splitlines() if "gunicorn.access" in line]
        return all(any(rid in line for line in access) for rid in (fresh_id, "trace.abc-123"))

    while not access_lines_written():
        assert time.monotonic() < deadline, children.log("web")[-3000:]
        time.sleep(0.1)
    # The task worker writes its first line as it starts, which on a busy machine can come
    # after the requests above: wait for it too.
    while not children.log("worker").strip():
        assert time.monotonic() < deadline + 20, "the task worker wrote no log line"
        time.sleep(0.1)
    lines = [line for line in children.log("web").splitlines() if line.strip()]

    # Then every line is one JSON object with the common fields,
    records = [json.loads(line) for line in lines]
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    # and every line about the first request names it, its access line with the details,
    about_first = [r for r in records if r.get("request_id") == "trace.abc-123"]
    access = [r for r in about_first if r["logger"] == "gunicorn.access"]
    assert len(access) == 1
    assert access[0]["method"] == "POST"
    assert access[0]["status"] == 400
    assert isinstance(access[0]["duration_ms"], float)
    assert access[0]["path"].startswith("/api/v1/server/codes/")
    assert {r["logger"] for r in about_first} == {"gunicorn.access", "django.request"}
    # and neither the live code, nor the key, nor a query string is ever written.
    text = children.log("web") + children.log("worker")
    assert live.scan_code not in text and live.canonical not in text
    assert key not in text and "hidden-query" not in text
    assert [json.loads(line) for line in children.log("worker").splitlines() if line.strip()]


def test_the_worker_writes_each_line_once_in_development_mode(tmp_path, ops_user):
    plain = CodeTypeFactory()
    job = bulk.job_generate_start(
        actor=Actor.staff(ops_user), code_type_name=plain.name, quantity=3
    )
    env = {**os.environ, **database_env(), "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1"}
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    children = Children(tmp_path, env)
    worker = children.start(
        "worker", [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"]
    )
    try:
        worker.wait(timeout=60)
    finally:
        children.stop()

    lines = [line for line in children.log("worker").splitlines() if line.strip()]
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
    assert sum("run_job_task state=RUNNING" in line for line in lines) == 1, "\n".join(lines)
    assert len(lines) == len(set(lines)), "\n".join(lines)
