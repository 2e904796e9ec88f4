"""The domain figures /metrics reports, and the named events the services record them with.

Each process (gunicorn workers, `manage.py db_worker`) writes its own figures to a file in
settings.METRICS_DIR (prometheus_client's multiprocess mode); `metrics_export` merges them
when /metrics is scraped. Recording an event is a dictionary lookup and a write to a
memory-mapped file: no database, no network, nothing that can fail a redeem.
"""

import os

from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError
from prometheus_client import Counter, Histogram, values

from redemption import exceptions as exc
from redemption.fulfillment import Reply

if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not values.ValueClass._multiprocess:
    raise ImproperlyConfigured(
        "prometheus_client was imported before the settings set PROMETHEUS_MULTIPROC_DIR; "
        "its figures would stay in this process."
    )

REDEEMS = Counter(
    "redemption_redeems",
    "Redeem calls by outcome (ok, in_progress, error) and reason (the error code).",
    ["outcome", "reason"],
    registry=None,
)
WEBHOOK_CALLS = Counter(
    "redemption_webhook_calls",
    "Fulfilment webhook calls by result (success, pending, failure, transport_error).",
    ["result"],
    registry=None,
)
WEBHOOK_SECONDS = Histogram(
    "redemption_webhook_call_duration_seconds",
    "How long fulfilment webhook calls took, by result.",
    ["result"],
    registry=None,
)
JOBS = Counter(
    "redemption_jobs",
    "Bulk jobs reaching a status (queued, running, succeeded, failed), by kind.",
    ["kind", "status"],
    registry=None,
)
RATE_LIMIT_REFUSALS = Counter(
    "redemption_rate_limit_refusals",
    "Requests refused by a rate limit (redeem_profile, redeem_ip, sign_in).",
    ["limit"],
    registry=None,
)

WIRE_MESSAGES = Counter(
    "redemption_wire_messages",
    "brainCloud wire messages by endpoint (client, s2s), service, operation and outcome "
    "(ok, error, replayed, refused).",
    ["endpoint", "service", "operation", "outcome"],
    registry=None,
)


def redeem_succeeded(*, in_progress: bool) -> None:
    """Count a redeem that redeemed the code (200) or left its fulfilment running (202)."""
    REDEEMS.labels("in_progress" if in_progress else "ok", "").inc()


def redeem_failed(error: BaseException) -> None:
    """Count a redeem that was refused or failed, by the error code its caller receives."""
    if isinstance(error, exc.RedemptionError):
        reason = error.code
    elif isinstance(error, OperationalError | InterfaceError):
        reason = exc.ServiceUnavailableError.code
    else:
        reason = exc.InternalError.code
    REDEEMS.labels("error", reason).inc()


def webhook_result(reply: Reply) -> str:
    """What a webhook call came to: success, pending (async), failure, or transport_error."""
    if reply.is_transport_failure:
        return "transport_error"
    if not reply.success:
        return "failure"
    return "success" if reply.complete else "pending"


def webhook_called(reply: Reply, *, seconds: float) -> None:
    """Count one webhook call and how long it took."""
    result = webhook_result(reply)
    WEBHOOK_CALLS.labels(result).inc()
    WEBHOOK_SECONDS.labels(result).observe(seconds)


def job_reached(*, kind: str, status: str) -> None:
    """Count a job entering `status` (queued, running, succeeded, failed)."""
    JOBS.labels(kind, status).inc()


def rate_limited(*, limit: str) -> None:
    """Count a request refused by the named limit (redeem_profile, redeem_ip, sign_in)."""
    RATE_LIMIT_REFUSALS.labels(limit).inc()


def wire_message(*, endpoint: str, service: str, operation: str, outcome: str) -> None:
    """Count one brainCloud message (`service`/`operation` only as offered, else "other")."""
    WIRE_MESSAGES.labels(endpoint, service, operation, outcome).inc()
