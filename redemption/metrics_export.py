"""GET /metrics: who may scrape it, and one answer merged from the files of every process.

Every process of the host writes its figures to its own files in settings.METRICS_DIR
(`<type>_<pid>.db`, prometheus_client's multiprocess mode). A process that has ended leaves its
files behind: they are folded into one archive file per type (`<type>_archive.db`) — by
gunicorn's `child_exit` hook as soon as a web worker ends, and by every scrape for any other
process that has gone (a restarted db_worker). Totals therefore survive restarts, and the
directory holds files for the live processes plus the archives, not one set per process ever
started. Folding and scraping take the same lock, so a scrape never counts a file twice.

The directory must be local to the host (one per host, never on a shared volume): whether a
process is alive is asked by its pid.
"""

import fcntl
import hmac
import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# Types whose values add up across processes; gauges are never folded (mark_process_dead drops
# the live ones, and the portal records none).
_PROCESS_FILE = re.compile(r"^(?P<type>counter|histogram|summary)_(?P<pid>\d+)\.db$")
_LOCK_FILE = ".fold.lock"


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    with open(directory / _LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def _fold(directory: Path, metric_type: str, pid: int) -> None:
    """Add one ended process's values to the archive of its type, then remove its file."""
    source = directory / f"{metric_type}_{pid}.db"
    if not source.exists():
        return
    archive = MmapedDict(str(directory / f"{metric_type}_archive.db"))
    try:
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(source)):
            current, _ = archive.read_value(key)
            archive.write_value(key, current + value, 0.0)
    finally:
        archive.close()
    source.unlink()


def _fold_ended(directory: Path) -> int:
    ended = 0
    for path in sorted(directory.glob("*.db")):
        match = _PROCESS_FILE.match(path.name)
        if match and not _alive(int(match["pid"])):
            _fold(directory, match["type"], int(match["pid"]))
            ended += 1
    return ended


def fold_ended_processes(directory: Path | None = None) -> int:
    """Fold the files of every process that has ended; return how many files were folded."""
    directory = directory or settings.METRICS_DIR
    with _directory_lock(directory):
        return _fold_ended(directory)


def process_exited(pid: int, directory: Path | None = None) -> None:
    """Fold the files of a process that has just ended (gunicorn's child_exit hook)."""
    directory = directory or settings.METRICS_DIR
    with _directory_lock(directory):
        for metric_type in ("counter", "histogram", "summary"):
            _fold(directory, metric_type, pid)
        mark_process_dead(pid, str(directory))


def exposition(directory: Path | None = None) -> bytes:
    """Every process's figures, summed, in the Prometheus text format."""
    directory = directory or settings.METRICS_DIR
    with _directory_lock(directory):
        _fold_ended(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(directory))
        return generate_latest(registry)


def scrape_allowed(request: HttpRequest) -> bool:
    """The caller sent METRICS_TOKEN as a bearer token, or its address is in METRICS_ALLOWED_IPS.

    The address is the connection's (REMOTE_ADDR), never a forwarded one: scrapers reach the
    app server directly, and a header is not proof of where a request came from.
    """
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
    if settings.METRICS_ALLOWED_IPS:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in settings.METRICS_ALLOWED_IPS)
    return False


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus scrape target; to anyone not allowed, the portal's ordinary 404."""
    if not scrape_allowed(request):
        raise Http404
    if request.method not in {"GET", "HEAD"}:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
