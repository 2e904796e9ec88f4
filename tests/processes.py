"""Real processes for tests: app servers, workers, `make serve`, a throwaway PostgreSQL, PgBouncer.

`initdb`, `postgres` and `pgbouncer` refuse to run as root, and CI runs as root: they run as
the `postgres` user (`runuser -u postgres --`, `pgbouncer -u postgres`). Everything started
here is stopped by its own pid (each child in its own session).
"""

import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_env() -> dict[str, str]:
    """Environment that points a child process at the very database this test uses."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        user = urllib.parse.quote(db.get("USER") or "", safe="")
        password = urllib.parse.quote(db.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return {"DATABASE_URL": f"postgres://{auth}{host}{port}/{db['NAME']}", "SQLITE_PATH": ""}
    name = str(db["NAME"])
    assert Path(name).is_file(), f"the SQLite test database must be a file, not {name!r}"
    return {"DATABASE_URL": "", "SQLITE_PATH": name}


def _default_sigint() -> None:
    # A test run started in the background ignores SIGINT, and children inherit that; a child
    # that must stop on Ctrl-C (make serve) needs the default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Children:
    """Processes started by one test, each in its own session; stopped by pid in teardown."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_sigint,
            )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Processes(Children):
    """Children that run under the test settings against the very database the test uses."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(
            log_dir,
            {
                **os.environ,
                **database_env(),
                "DJANGO_SETTINGS_MODULE": "portal.settings_test",
                "PYTHONUNBUFFERED": "1",
            },
        )


def wait_http(children: Children, name: str, port: int, path: str = "/readyz", timeout=60) -> None:
    """Wait until `path` answers 200 on `port`; fail with the child's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert children.procs[name].poll() is None, f"{name} exited:\n{children.log(name)[-4000:]}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    pytest.fail(f"{name} did not answer on port {port}:\n{children.log(name)[-4000:]}")


def wait_ready(procs: Children, name: str, port: int, timeout: float = 45) -> None:
    """Wait until the app server `name` answers /readyz."""
    wait_http(procs, name, port, "/readyz", timeout)


def children_of(pid: int) -> list[int]:
    """The pids of the live processes whose parent is `pid` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def production_env(var_dir: Path) -> dict[str, str]:
    """Production settings (not the test settings) on the test database, files in `var_dir`."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        database_env(),
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECURE="0",
        PORTAL_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    env.pop("DJANGO_SECRET_KEY", None)
    return env


def pg_tool(name: str) -> str:
    """A PostgreSQL server tool (initdb, pg_ctl) from PATH or Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        pytest.fail(f"{name} not found: install the PostgreSQL server (postgresql)")
    return candidates[-1]


def as_postgres() -> list[str]:
    """The prefix that runs a command as the `postgres` user (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("runuser not found: it runs PostgreSQL and PgBouncer as the postgres user")
    return [runuser, "-u", "postgres", "--"]


def postgres_owned_dir(prefix: str) -> Path:
    """A fresh directory the postgres user owns (pytest's tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    path.chmod(0o755)
    return path


class ThrowawayCluster:
    """A PostgreSQL cluster of its own in a temporary directory, on a free port."""

    def __init__(self) -> None:
        self.base = postgres_owned_dir("rcp-pg-")
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_postgres(), *argv],
            cwd=self.base,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def init(self) -> "ThrowawayCluster":
        self._run(
            pg_tool("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            pg_tool("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, database: str, sql: str) -> str:
        result = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip()

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(
                pg_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False
            )
        shutil.rmtree(self.base, ignore_errors=True)


class PgBouncer:
    """A real pgbouncer in transaction pooling mode in front of one PostgreSQL database."""

    def __init__(self, *, host: str, port: int, database: str) -> None:
        self.binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(self.binary).exists():
            pytest.fail("pgbouncer not found: `make test` installs it (apt-get install pgbouncer)")
        self.base = postgres_owned_dir("rcp-bouncer-")
        self.port = free_port()
        self.database = database
        self.config = self.base / "pgbouncer.ini"
        self.config.write_text(
            "[databases]\n"
            f"{database} = host={host} port={port} dbname={database} user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir = {self.base}\n"
            "auth_type = any\n"
            "admin_users = postgres\n"
            "pool_mode = transaction\n"
            # Few server connections for many clients: transactions really share them.
            "default_pool_size = 4\nmax_client_conn = 200\n"
            f"logfile = {self.base / 'pgbouncer.log'}\n"
            f"pidfile = {self.base / 'pgbouncer.pid'}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.config, "postgres", "postgres")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "PgBouncer":
        user = ["-u", "postgres"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [self.binary, *user, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"pgbouncer exited:\n{self.log()}"
            probe = subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-d",
                    self.database,
                    "-At",
                    "-c",
                    "SELECT 1",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0:
                return self
            time.sleep(0.2)
        pytest.fail(f"pgbouncer did not answer on {self.port}:\n{self.log()}")

    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def stats(self) -> dict[str, int]:
        """SHOW STATS for our database: total transactions and queries it pooled."""
        out = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "pgbouncer",
                "-F",
                "\t",
                "-A",
                "-c",
                "SHOW STATS",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        header = out[0].split("\t")
        for line in out[1:]:
            row = dict(zip(header, line.split("\t"), strict=False))
            if row.get("database") == self.database:
                return {k: int(v) for k, v in row.items() if v.isdigit()}
        return {}

    def log(self) -> str:
        path = self.base / "pgbouncer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def gunicorn_argv(port: int, *, workers: int = 2, threads: int = 4) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "portal.wsgi:application",
        "-w",
        str(workers),
        "-k",
        "gthread",
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]


def worker_argv(worker_id: str) -> list[str]:
    return [
        sys.executable,
        "manage.py",
        "db_worker",
        "--interval",
        "0.2",
        "--no-startup-delay",
        "--worker-id",
        worker_id,
    ]


def manage(env: dict[str, str], *argv: str) -> str:
    """Run a management command against `env`'s database; return its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(argv)}:\n{result.stderr[-3000:]}"
    return result.stdout


def request(
    port: int,
    method: str,
    path: str,
    *,
    secret: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request on a new connection; (status, headers, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        if secret:
            all_headers["Authorization"] = f"Bearer {secret}"
        data = None
        if body is not None:
            all_headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        conn.request(method, path, data, all_headers)
        response = conn.getresponse()
        raw = response.read()
        found = {k.lower(): v for k, v in response.getheaders()}
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return response.status, found, parsed
    finally:
        conn.close()
