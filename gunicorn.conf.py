"""gunicorn settings for the portal: `gunicorn -c gunicorn.conf.py` (`make serve`, deploy/).

Each value below can be changed from the environment. As always with gunicorn, options on the
command line and in GUNICORN_CMD_ARGS win over this file (e.g. `--bind 127.0.0.1:8000`).

Why gthread, and why the timeouts are what they are: a gthread worker answers requests in a
pool of threads while its main loop keeps telling the master it is alive, so `timeout` only
catches a worker whose main loop is stuck; it never limits how long one response may take.
CSV exports are streamed row by row (StreamingHttpResponse), so a 10,000,000-row export to a
slow client holds one thread for as long as it needs and nothing in gunicorn cuts it short.
What does end one is a restart: on SIGTERM or SIGHUP a worker stops accepting and gives the
requests it is serving `graceful_timeout` seconds to finish.
"""

import gc
import os

from gunicorn.glogging import Logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# Load the Django settings here, in the master and before anything imports prometheus_client:
# they point it at the metrics directory every process of this host shares (and refuse to start
# without a secret key, before any worker is forked).
from django.conf import settings

METRICS_DIR = settings.METRICS_DIR  # reading a setting is what loads them

from redemption import logs, metrics_export  # noqa: E402


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "portal.wsgi:application"
port = _int("PORT", 8000)
bind = [f"0.0.0.0:{port}"]
worker_class = "gthread"
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", 2 * _cores() + 1))
# Each thread may hold a database connection: workers × threads per host.
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 60)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# gunicornc's socket (gunicorn >= 25.1) beside the portal's other files, not in $HOME.
control_socket = str(settings.VAR_DIR / "gunicorn.ctl")

# Access log to stdout, error log to stderr, both formatted like the portal's own lines
# (LOG_FORMAT=json: one JSON object per line) through the settings' logging configuration.
accesslog = "-"
errorlog = "-"
logconfig_dict = settings.LOGGING


class PortalLogger(Logger):
    """gunicorn's logger, writing the access line as fields: request id, masked path, no query."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        fields = logs.access_fields(
            method=environ.get("REQUEST_METHOD", "-"),
            path=environ.get("PATH_INFO", ""),
            status=int(status),
            duration_ms=request_time.total_seconds() * 1000,
            response_bytes=getattr(resp, "sent", None),
            remote_addr=environ.get("REMOTE_ADDR", "-"),
            request_id=environ.get(logs.REQUEST_ID_ENVIRON),
        )
        self.access_log.info(logs.access_message(fields), extra=fields)


logger_class = PortalLogger


def on_starting(server):
    """Fold what processes of an earlier run left in the metrics directory."""
    metrics_export.fold_ended_processes()


def post_worker_init(worker):
    """The worker has loaded the app: hide what exists by now from the garbage collector.

    Django, the settings, the URLconf and every view (~100,000 objects) live as long as the
    worker. Each full collection walked them all again, 67 ms on this 2-core machine, a pause
    every thread of the worker waits out; frozen, a collection walks only what requests made.
    In the redeem bench (3 interleaved runs each) p99 went from 154 to 126 ms.
    """
    gc.freeze()


def child_exit(server, worker):
    """A web worker ended: fold its figures into the archive (prometheus_client's advice)."""
    metrics_export.process_exited(worker.pid)
