"""Middleware of our own: request ids, no-store caching, a 503 page while the database is
unreachable, and the second factor some roles must use.

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
- SessionRenewMiddleware renews a signed-in session (SESSION_COOKIE_AGE from now) at most once a
  minute, so it ends STAFF_SESSION_IDLE_MINUTES after the last request, without a database
  write on every page.
- SecondFactorRequiredMiddleware keeps users of the roles in STAFF_2FA_REQUIRED_ROLES on the
  enrolment page until they have a second factor.
"""

import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.views import redirect_to_login
from django.db import InterfaceError, OperationalError
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.template import loader
from django.urls import reverse
from django_otp import user_has_device

from redemption import logs, permissions
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


class SecondFactorRequiredMiddleware:
    """Hold a signed-in user whose role must use a second factor (STAFF_2FA_REQUIRED_ROLES) and
    has not in this session: without one they may only enrol or sign out; with one (a session
    older than their enrolment) they sign in again, this time with a code."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.static_prefix = "/" + str(settings.STATIC_URL).lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        held = self._held(request)
        return held if held is not None else self.get_response(request)

    def _held(self, request: HttpRequest) -> HttpResponseBase | None:
        if not settings.STAFF_2FA_REQUIRED_ROLES:
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified():  # type: ignore[union-attr,attr-defined]
            return None
        if request.path.startswith(self.static_prefix) or not permissions.second_factor_required(
            user
        ):
            return None
        if user_has_device(user):
            auth.logout(request)
            return redirect_to_login(request.get_full_path())
        if request.path in {reverse("second_factor"), reverse("logout")}:
            return None
        return redirect("second_factor")


# The session key holding when the session was last renewed (seconds since the epoch).
SESSION_RENEWED = "renewed_at"
SESSION_RENEW_SECONDS = 60


def session_renewed(request: HttpRequest) -> None:
    """Note the session as renewed now (at sign-in: its first save sets its expiry)."""
    request.session[SESSION_RENEWED] = int(time.time())


def session_renewed_at_sign_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """user_logged_in receiver: a new session starts renewed."""
    if request is not None and hasattr(request, "session"):
        session_renewed(request)


class SessionRenewMiddleware:
    """Push a signed-in session's expiry forward, at most once a minute."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = request.session
        try:
            signed_in = session.session_key is not None and request.user.is_authenticated
        except DATABASE_GONE as err:  # the first to read the session and the user
            logger.warning("database unavailable: %s on %s", type(err).__name__, request.path)
            return outage_response(request)
        if signed_in:
            renewed = session.get(SESSION_RENEWED)
            if not isinstance(renewed, int) or time.time() - renewed >= SESSION_RENEW_SECONDS:
                session_renewed(request)
        return self.get_response(request)
