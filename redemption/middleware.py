"""Cache-Control: no-store on every response but static files.

API answers carry tokens, codes and records, and portal pages show codes, custom info and
secrets; no browser, proxy or CDN may keep any of them. Marking everything is simpler and
safer than deciding page by page. Static files (hashed, public) stay cacheable.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase


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
