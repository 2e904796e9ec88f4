"""Liveness and readiness probes for load balancers."""

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from redemption.api.errors import error_response, service_unavailable


# Probes take no input: any other method is a plain 405, never a CSRF refusal.
@csrf_exempt
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up."""
    return JsonResponse({"status": "ok"})


@csrf_exempt
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """The database answers; when it does not, the API's 503 error response."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return error_response(service_unavailable("The database is unreachable."))
    return JsonResponse({"status": "ready"})
