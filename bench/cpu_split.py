"""Where the CPU of an HTTP run goes: per process group from /proc, inside Python from py-spy.

`CpuWatch` reads utime + stime of the gunicorn processes, the PostgreSQL server processes and
the load tool at the start and at the end of a run. `PySpy` samples one gunicorn worker for the
same seconds (`py-spy record --gil --format raw`: only the thread holding the GIL, so Python
at work rather than threads waiting in system calls) and attributes each sample to
the innermost frame's code: ours (redemption/, portal/), Django, the database driver (psycopg,
sqlite3), gunicorn and the standard library (sockets, threads, JSON), or other libraries
(middleware packages such as whitenoise, django-otp, axes, prometheus-client).
"""

import contextlib
import os
import re
import resource
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.harness import BIN, log

TICK = os.sysconf("SC_CLK_TCK")
GROUPS = ("ours", "django", "driver", "gunicorn+stdlib", "other libraries")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _processes() -> dict[int, tuple[str, int, float]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                found[int(entry)] = stat
    return found


def _descendants(root: int, table: dict[int, tuple[str, int, float]]) -> set[int]:
    family, grew = {root}, True
    while grew:
        more = {pid for pid, (_, parent, _) in table.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return family


class CpuWatch:
    """CPU seconds spent by gunicorn (`server_pid` and its workers), PostgreSQL and the load."""

    def __init__(self, server_pid: int, *, exclude: set[int] | None = None) -> None:
        self.server_pid = server_pid
        self.exclude = exclude or set()  # e.g. py-spy, a child of this process too
        self.before = self._groups()
        self.reaped_before = _reaped_children_cpu()

    def _groups(self) -> dict[str, dict[int, float]]:
        table = _processes()
        server = _descendants(self.server_pid, table)
        # The Python load generator runs in processes forked from this one.
        ours = _descendants(os.getpid(), table) - server - {os.getpid()} - self.exclude
        groups: dict[str, dict[int, float]] = {"app server": {}, "PostgreSQL": {}, "load": {}}
        for pid, (name, _, cpu) in table.items():
            if pid in server:
                groups["app server"][pid] = cpu
            elif name == "postgres" or name.startswith("postgres:"):
                groups["PostgreSQL"][pid] = cpu
            elif name == "wrk" or pid in ours:
                groups["load"][pid] = cpu
        return groups

    def stop(self) -> dict[str, float]:
        """CPU seconds per group since the start. The load tool has usually exited (and been
        waited for) by now: its CPU is then in this process's reaped-children total."""
        after = self._groups()
        spent = {
            group: sum(cpu - self.before[group].get(pid, 0.0) for pid, cpu in pids.items())
            for group, pids in after.items()
        }
        gone = [pid for pid in self.before["load"] if pid not in after["load"]]
        spent["load"] += _reaped_children_cpu() - self.reaped_before
        spent["load"] -= sum(self.before["load"][pid] for pid in gone)
        return spent


def _reaped_children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_pids(server_pid: int) -> list[int]:
    table = _processes()
    return sorted(pid for pid in _descendants(server_pid, table) if pid != server_pid)


def connections_per_worker(server_pid: int, port: int) -> list[int]:
    """How many established connections to `port` each gunicorn worker holds, in pid order.

    A keep-alive connection stays with the worker that accepted it, and the workers race to
    accept, so the load's persistent connections can pile up on a few of them; how they did
    moves the figures of a run (bench/README.md).
    """
    sockets = _established_sockets(port)
    counts = []
    for pid in worker_pids(server_pid):
        held = 0
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            descriptors = []
        for fd in descriptors:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in sockets:
                held += 1
        counts.append(held)
    return counts


def _established_sockets(port: int) -> set[int]:
    """Inodes of the established TCP sockets whose local port is `port` (the server's ends)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def py_spy_path() -> str | None:
    local = BIN / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class PySpy:
    """`py-spy record` of one process for `seconds`, in the background."""

    def __init__(self, pid: int, seconds: int, out: Path) -> None:
        self.out = out
        tool = py_spy_path()
        self.process = None
        if tool is None:
            log("py-spy is not installed (pip install py-spy): no Python-level CPU split")
            return
        argv = [tool, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250"]
        # --gil: only the thread holding the GIL, i.e. Python running, not threads in syscalls.
        argv += ["--gil", "--format", "raw", "--nonblocking", "--output", str(out)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def pids(self) -> set[int]:
        """The sampler's own process (none when py-spy is missing)."""
        return set() if self.process is None else {self.process.pid}

    def shares(self) -> dict[str, float] | None:
        """Fraction of the samples per group, or None if py-spy could not run."""
        if self.process is None:
            return None
        _, err = self.process.communicate(timeout=120)
        if self.process.returncode or not self.out.exists():
            log(f"py-spy failed ({self.process.returncode}): {err.decode()[-300:]}")
            return None
        counts: Counter[str] = Counter()
        for line in self.out.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if stack and n.isdigit():
                counts[_group(stack.rsplit(";", 1)[-1])] += int(n)
        total = sum(counts.values())
        return {g: counts[g] / total for g in GROUPS} if total else None


_FILE = re.compile(r"\(([^()]+?)(?::\d+)?\)\s*$")
# py-spy names files relative to the sys.path entry they were found under.
_PREFIXES = (
    (("redemption/", "portal/"), "ours"),
    (("django/",), "django"),
    (("psycopg", "sqlite3/", "_sqlite3"), "driver"),
    (("gunicorn/",), "gunicorn+stdlib"),
)


def _group(frame: str) -> str:
    found = _FILE.search(frame)
    path = found.group(1) if found else frame
    path = path.split("/site-packages/", 1)[-1]
    for prefixes, group in _PREFIXES:
        if path.startswith(prefixes):
            return group
    if "/" not in path or path.startswith(("<frozen", "json/", "http/", "concurrent/", "email/")):
        return "gunicorn+stdlib"  # the standard library: sockets, threads, JSON, HTTP parsing
    return "other libraries"


class CoresUnavailable(Exception):
    """The cores cannot be split here; the message says why."""


@contextlib.contextmanager
def postgres_on_cores_of_its_own(backend_pid: int) -> Iterator[tuple[list[int], list[int]]]:
    """Run the PostgreSQL server on the upper half of this process's cores, the rest on the lower.

    The server is the postmaster that forked `backend_pid` with every process it runs, and the
    backends it forks meanwhile inherit its cores. This process moves to the lower half, so the
    app server and the load it starts there stay there. Both get their cores back afterwards.
    Yields (the app's cores, PostgreSQL's cores); raises CoresUnavailable on one core, with a
    server on another host, or without the right to move its processes (root, CAP_SYS_NICE).
    """
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise CoresUnavailable(f"this process has {len(cores)} core")
    backend = _stat(backend_pid)
    postmaster = _stat(backend[1]) if backend else None
    if backend is None or postmaster is None or postmaster[0] != "postgres":
        raise CoresUnavailable("the PostgreSQL server does not run on this machine")
    root = backend[1]
    half = len(cores) // 2
    app, database = cores[:half], cores[half:]
    ours, theirs = os.sched_getaffinity(0), os.sched_getaffinity(root)

    def server_to(mask: set[int] | list[int], *, gone: tuple[type[OSError], ...]) -> None:
        for pid in _descendants(root, _processes()):
            with contextlib.suppress(*gone):
                os.sched_setaffinity(pid, mask)

    try:
        server_to(database, gone=(ProcessLookupError,))
    except PermissionError as err:
        server_to(theirs, gone=(ProcessLookupError, PermissionError))  # any it did move
        raise CoresUnavailable(f"cannot move the PostgreSQL server's processes ({err})") from None
    try:
        os.sched_setaffinity(0, app)
        yield app, database
    finally:
        os.sched_setaffinity(0, ours)
        server_to(theirs, gone=(ProcessLookupError,))
