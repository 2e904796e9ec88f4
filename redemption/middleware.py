"""While the database is unreachable the portal answers a 503 page of its own, not a 500.

The JSON API turns the same errors into its 503 envelope itself (`api.errors`); what escapes
a view elsewhere (a middleware saving the session, say) reaches `server_error`, the project's
500 handler, which tells the two cases apart too.
"""

import logging
import sys
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader

from redemption.api.errors import error_response

logger = logging.getLogger("redemption.outage")

DATABASE_GONE = (OperationalError, InterfaceError)


def outage_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: the API's JSON envelope under /api/, else the portal's page."""
    retry_after = settings.OUTAGE_RETRY_AFTER_SECONDS
    if request.path.startswith("/api/"):
        return error_response(OperationalError("the database is unreachable"))
    # Rendered without the request: the context processors would ask the database.
    body = loader.render_to_string("503.html", {"retry_after": retry_after})
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseOutageMiddleware:
    """Answer 503 when a view fails because the database cannot be reached."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_GONE):
            return None
        logger.warning("database unavailable: %s on %s", type(exception).__name__, request.path)
        return outage_response(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler: a 503 when what failed was reaching the database."""
    if isinstance(sys.exception(), DATABASE_GONE):
        return outage_response(request)
    return HttpResponse(loader.render_to_string("500.html"), status=500)
