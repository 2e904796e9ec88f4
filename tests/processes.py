"""Real processes for tests: gunicorn, db_worker and `make serve` against the test database."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

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
