"""What every benchmark shares: environment, fresh database, child processes, result rows.

Nothing here imports Django: `run.py` builds the environment first, then sets Django up.
"""

import contextlib
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/redemption_bench"


def log(message: str) -> None:
    """Progress goes to stderr, stamped, so stdout keeps only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- results ------------------------------------------------------------------------------------


@dataclass
class Result:
    """One line of the results table."""

    metric: str
    measured: str
    target: str = "—"
    reference: str = "—"
    passed: bool | None = None  # None: informative, no target

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "pass" if self.passed else "**FAIL**"


@dataclass
class Run:
    """Everything one `run.py` invocation measured, plus notes for the report."""

    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load_averages: dict[str, str] = field(default_factory=dict)

    def add(self, result: Result) -> Result:
        self.results.append(result)
        log(f"RESULT {result.metric}: {result.measured} (target {result.target}) {result.verdict}")
        return result

    def note(self, text: str) -> None:
        self.notes.append(text)
        log(f"NOTE {text}")


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| metric | measured | target | reference | pass/fail |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        cells = [r.metric, r.measured, r.target, r.reference, r.verdict]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def timed(fn: Callable[[], object], *, repeat: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of `repeat` calls of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- environment and database -------------------------------------------------------------------


def bench_environment(database_url: str, var_dir: Path) -> dict[str, str]:
    """Production-like settings on plain HTTP over loopback, shared by this process and children."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_SECURE": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PORTAL_VAR_DIR": str(var_dir),
            "LOG_LEVEL": env.get("LOG_LEVEL", "WARNING"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def make_var_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="redemption-bench-"))


def remove_var_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def recreate_database(database_url: str) -> None:
    """Drop and create the benchmark database (connecting to the server's `postgres` database)."""
    import psycopg
    from psycopg import sql

    parts = urllib.parse.urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit("DATABASE_URL must name a database")
    admin_url = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(env: dict[str, str], *args: str) -> str:
    """Run a management command to completion and return its stdout."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


# --- child processes ----------------------------------------------------------------------------


class Child:
    """A server or worker we started; stopped by its own pid (and process group), never by name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _CHILDREN.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_rss_mb(self) -> float | None:
        """VmHWM (peak resident set) of the process, read while it still runs."""
        return proc_status_kb(self.pid, "VmHWM")

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        if self in _CHILDREN:
            _CHILDREN.remove(self)

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


_CHILDREN: list[Child] = []


def stop_all_children() -> None:
    for child in list(_CHILDREN):
        child.stop()


def proc_status_kb(pid: int, key: str) -> float | None:
    """A /proc/<pid>/status field in MB (the kernel reports kB)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(child: Child, *, settle: float = 0.5, timeout: float = 30) -> None:
    """Wait until a freshly started process has finished importing (its CPU use drops).

    Settled means under a quarter of a core over `settle` seconds: an idle `db_worker` polling
    every 0.1 s keeps using about a tenth of one, a process still importing uses all of it.
    """
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        now = cpu_seconds(child.pid)
        if now > 0.3 and now - last < 0.25 * settle:
            return
        last = now
        time.sleep(settle)
    raise RuntimeError(f"{child.name} did not settle in {timeout} s")


def start_worker(
    env: dict[str, str], log_dir: Path, name: str, *, interval: float | None = 0.1
) -> Child:
    """A real `manage.py db_worker`, polling every `interval` s (None: its default, as deployed)."""
    poll = [] if interval is None else ["--interval", str(interval)]
    child = Child(
        name,
        [PYTHON, "manage.py", "db_worker", *poll, "--no-startup-delay", "--worker-id", name],
        env,
        log_dir,
    )
    wait_until_idle(child)
    return child


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    env: dict[str, str], log_dir: Path, name: str, app: str, *, workers: int, threads: int
) -> tuple[Child, int]:
    port = free_port()
    child = Child(
        name,
        [
            str(BIN / "gunicorn"),
            app,
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        env,
        log_dir,
    )
    wait_http(child, port, "/healthz" if app.startswith("portal") else "/bare-health")
    return child, port


def wait_http(child: Child, port: int, path: str, timeout: float = 30) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer on {port}:\n{child.tail()}")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --- machine ------------------------------------------------------------------------------------


def machine_info(database_url: str) -> dict[str, str]:
    import psycopg

    info: dict[str, str] = {}
    info["date"] = subprocess.run(
        ["date", "-u"], capture_output=True, text=True, check=False
    ).stdout.strip()
    info["cpus"] = str(os.cpu_count())
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu model"] = model or platform.processor() or "unknown"
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        info["memory"] = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        info["memory"] = "unknown"
    with psycopg.connect(database_url) as conn:
        info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        settings = ", ".join(
            f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"
            for name in ("shared_buffers", "work_mem", "synchronous_commit", "max_connections")
        )
        info["postgresql settings"] = settings
    info["python"] = platform.python_version()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    info["commit"] = (commit or "unknown") + (" (with uncommitted changes)" if dirty else "")
    with contextlib.suppress(OSError):
        info["load average at start"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return info


# --- one benchmark run --------------------------------------------------------------------------


@dataclass
class Bench:
    """Settings and shared findings of one run, handed to every section."""

    env: dict[str, str]
    var_dir: Path
    database_url: str
    quick: bool
    run: Run
    n_generate: int
    n_import: int
    n_scale: int
    gunicorn_workers: int
    gunicorn_threads: int
    http_seconds: int
    facts: dict[str, float] = field(default_factory=dict)  # e.g. copy rate, 1M peak RSS

    @property
    def log_dir(self) -> Path:
        path = self.var_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path
