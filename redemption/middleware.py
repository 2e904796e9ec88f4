"""Middleware of our own: request ids, no-store caching, and a 503 page while the database is
unreachable.

- RequestIdMiddleware keeps a well-formed incoming X-Request-Id (else makes one), in the
  response header and in every log line.
- NoStoreMiddleware marks every response but static files `Cache-Control: no-store`: API
  answers carry tokens, codes and records, portal pages show codes, custom info and secrets,
  and marking everything is simpler and safer than deciding page by page (hashed static files
  stay cacheable).
- DatabaseOutageMiddleware answers the portal's own 503 page, not a 500, while the database is
  unreachable. The JSON API turns the same errors into its 503 envelope itself (`api.errors`);
  what escapes a view elsewhere (a middleware saving the session, say) reaches `server_error`,
  the project's 500 handler, which tells the two cases apart too.
"""

import logging
import sys
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.template import loader

from redemption import logs
from redemption.api.errors import error_response


class RequestIdMiddleware:
    """Keep a well-formed incoming X-Request-Id (else make one) for the whole request.

    First in MIDDLEWARE, so that every response carries the header, static files and redirects
    included. A streamed body (CSV exports) is produced after the view returns; the id is set
    again around each chunk so that what is logged while streaming still names the request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = logs.request_id_for(request.headers.get(logs.REQUEST_ID_HEADER))
        request.META[logs.REQUEST_ID_ENVIRON] = request_id
        token = logs.REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.REQUEST_ID.reset(token)
        response[logs.REQUEST_ID_HEADER] = request_id
        if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
            content = response.streaming_content
            if isinstance(content, Iterator):
                response.streaming_content = _with_request_id(content, request_id)
        return response


def _with_request_id(iterator: Iterator[bytes], request_id: str) -> Iterator[bytes]:
    while True:
        token = logs.REQUEST_ID.set(request_id)
        try:
            chunk = next(iterator, None)
        finally:
            logs.REQUEST_ID.reset(token)
        if chunk is None:
            return
        yield chunk


class NoStoreMiddleware:
    """Send `Cache-Control: no-store` with every response outside STATIC_URL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.static_prefix = "/" + str(settings.STATIC_URL).lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not request.path.startswith(self.static_prefix):
            response["Cache-Control"] = "no-store"
        return response


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
