"""Liveness and readiness probes for load balancers."""

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """The database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse(
            {
                "error": {
                    "code": "SERVICE_UNAVAILABLE",
                    "reasonCode": 40832,
                    "message": "The database is unreachable.",
                    "details": {},
                }
            },
            status=503,
        )
    return JsonResponse({"status": "ready"})
