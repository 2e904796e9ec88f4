"""Fuzz the JSON API with Schemathesis against a live gunicorn, driven by /api/v1/openapi.json.

    make fuzz                              # SQLite in a temporary directory
    DATABASE_URL=postgres://… make fuzz    # a fresh <name>_fuzz database on that server

Every default check runs: no 5xx, responses (status, headers, body) as documented, schema-valid
requests accepted, schema-invalid ones refused. The server gets a real server key and a user
token, and a little data so the lists have a next page (a list's `cursor` is an opaque value
the server hands out, so the run passes a real one, as it passes real credentials).

The fuzz server lifts gunicorn's request-line and header-size limits (its bare 414/400
pages are the transport's, not the API's), and a hook gives each valid Idempotency-Key a
per-request suffix (scripts/fuzz_hooks.py): a key reused for another request is a documented
422, which generated keys, repeating, would otherwise hit all the time.

Jobs: the fuzz server runs no job worker. Generated jobs are accepted and queued exactly as
documented (the limits stay the product's), but never run, so no request can make the run
generate ten million codes; the import parser has its own property tests.

    FUZZ_MAX_EXAMPLES  test cases per operation and phase (default 40)
    FUZZ_SEED          reproduce a run (default: random; printed either way)
    FUZZ_MAX_SECONDS   the run's time budget: fuzzing repeats until it is spent (default 180)
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def say(text: str) -> None:
    print(f"fuzz: {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FuzzDatabase:
    """SQLite in the work directory, or a fresh database beside $DATABASE_URL's (dropped after)."""

    def __init__(self, work: Path) -> None:
        self.base_url = os.environ.get("DATABASE_URL", "")
        self.url = ""
        self.sqlite = str(work / "fuzz.sqlite3")
        if self.base_url:
            parts = urllib.parse.urlsplit(self.base_url)
            name = (parts.path.lstrip("/") or "redemption") + "_fuzz"
            self.name = name
            self.admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
            self.url = urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def env(self) -> dict[str, str]:
        if self.url:
            return {"DATABASE_URL": self.url, "SQLITE_PATH": ""}
        return {"DATABASE_URL": "", "SQLITE_PATH": self.sqlite}

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        if self.url:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.name}"')
            say(f"database {self.name} (PostgreSQL)")
        else:
            say(f"database {self.sqlite} (SQLite)")

    def drop(self) -> None:
        if self.url:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def call(port: int, method: str, path: str, token: str, body: object = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        conn.request(method, path, data, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def wait_ready(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"fuzz: gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.3)
    raise SystemExit("fuzz: gunicorn did not become ready")


class _Receiver(BaseHTTPRequestHandler):
    """The run's fulfilment webhook: every call succeeds at once."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"success": true, "complete": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def start_receiver() -> tuple[ThreadingHTTPServer, str]:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver, f"http://127.0.0.1:{receiver.server_address[1]}/fulfil"


def seed_data(port: int, server_key: str) -> dict[str, str]:
    """Two code types and a profile with two redeemed codes: each list has a next page."""

    def ok(status: int, body: dict, expected: int) -> dict:
        if status != expected:
            raise SystemExit(f"fuzz: seeding failed ({status}): {body}")
        return body

    for name in ("fuzz-a", "fuzz-b"):
        ok(*call(port, "POST", "/api/v1/server/code-types", server_key, {"codeType": name}), 201)
    for scan in ("FUZZ-0000-0001", "FUZZ-0000-0002"):
        body = {"scanCode": scan, "codeType": "fuzz-a", "codeState": "Available"}
        ok(*call(port, "POST", "/api/v1/server/codes", server_key, body), 201)
    token = ok(
        *call(port, "POST", "/api/v1/server/user-tokens", server_key, {"profileId": "fuzz-user"}),
        201,
    )["token"]
    for scan in ("FUZZ-0000-0001", "FUZZ-0000-0002"):
        ok(*call(port, "POST", "/api/v1/client/redeem", token, {"scanCode": scan}), 200)
    types_cursor = ok(*call(port, "GET", "/api/v1/server/code-types?limit=1", server_key), 200)[
        "nextCursor"
    ]
    records_cursor = ok(*call(port, "GET", "/api/v1/client/redeemed-codes?limit=1", token), 200)[
        "nextCursor"
    ]
    return {"token": token, "types_cursor": types_cursor, "records_cursor": records_cursor}


CONFIG = """\
# Written by scripts/fuzz.py for one run.
[auth.openapi.serverKey]
bearer = "${{FUZZ_SERVER_KEY}}"

[auth.openapi.userToken]
bearer = "${{FUZZ_USER_TOKEN}}"

# A cursor is an opaque value the server hands out: the run passes real ones.
[[operations]]
include-operation-id = "listCodeTypes"
parameters = {{ "query.cursor" = "{types_cursor}" }}

[[operations]]
include-operation-id = ["clientRedeemedCodes", "profileRedeemedCodes"]
parameters = {{ "query.cursor" = "{records_cursor}" }}
"""


def main() -> int:
    seed = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**31))
    max_examples = int(os.environ.get("FUZZ_MAX_EXAMPLES") or 40)
    max_seconds = int(os.environ.get("FUZZ_MAX_SECONDS") or 180)
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fuzz-", dir=ROOT / "var"))
    db = FuzzDatabase(work)
    env = {
        **os.environ,
        **db.env(),
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "PORTAL_VAR_DIR": str(work),
        "PYTHONUNBUFFERED": "1",
        # Webhook URLs the run makes up may name any host; let the save-time check accept
        # private ones (the run never redeems through them: no code of such a type exists).
        "FULFILLMENT_ALLOW_PRIVATE_NETWORKS": "true",
        # Failed redeems are limited per profile; the run makes thousands with one token, and
        # would mostly hear the documented 429 instead of what the redeem logic answers.
        "REDEEM_MAX_FAILED_PER_PROFILE": "1000000",
        "REDEEM_MAX_FAILED_PER_IP": "1000000",
    }
    server = None
    log = work / "gunicorn.log"
    try:
        db.create()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        server_key = subprocess.run(
            [sys.executable, "manage.py", "create_server_key", "fuzz"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        with log.open("wb") as out:
            server = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "portal.wsgi:application",
                    "-w",
                    "2",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                    # The API's own limits are under test, not gunicorn's request-line and
                    # header limits, which answer a bare, undocumented 414 or 400.
                    "--limit-request-line",
                    "0",
                    "--limit-request-field_size",
                    "0",
                    "--limit-request-fields",
                    "32768",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_ready(server, port, log)
        receiver, webhook_url = start_receiver()
        seeded = seed_data(port, server_key)
        config = work / "schemathesis.toml"
        config.write_text(CONFIG.format(**seeded))
        say(f"seed {seed}; at most {max_examples} cases per operation and phase; {max_seconds} s")
        report = work / "report.json"
        run = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "--config-file",
                str(config),
                "run",
                f"http://127.0.0.1:{port}/api/v1/openapi.json",
                "--checks",
                "all",
                "--seed",
                str(seed),
                "--max-examples",
                str(max_examples),
                "--max-time",
                str(max_seconds),
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(report),
            ],
            cwd=work,
            env={
                **os.environ,
                "FUZZ_SERVER_KEY": server_key,
                "FUZZ_USER_TOKEN": seeded["token"],
                "SCHEMATHESIS_HOOKS": str(ROOT / "scripts" / "fuzz_hooks.py"),
                "FUZZ_WEBHOOK_URL": webhook_url,
                "PYTHONPATH": str(ROOT),
            },
        )
        receiver.shutdown()
        cases = count_cases(report)
        say(f"seed {seed}: {cases} test cases; schemathesis exit {run.returncode}")
        if run.returncode:
            say(f"reproduce with FUZZ_SEED={seed} make fuzz; server log: {log}")
            errors = re.findall(r"(?m)^.*(?:Traceback|Error).*$", log.read_text())[-10:]
            for line in errors:
                say(f"server: {line}")
        return run.returncode
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        db.drop()
        if os.environ.get("FUZZ_KEEP"):
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def count_cases(report: Path) -> int:
    """Test cases Schemathesis sent, from its NDJSON events (scenario finished events)."""
    if not report.exists():
        return 0
    cases = 0
    for line in report.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        cases += _cases_in(event)
    return cases


def _cases_in(event: object) -> int:
    if isinstance(event, dict):
        if "ScenarioFinished" in event:
            recorder = event["ScenarioFinished"].get("recorder", {})
            return len(recorder.get("cases", {}))
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
