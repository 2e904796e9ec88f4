"""Bare Django reference: the same settings and middleware, a trivial JSON view, no database.

Served by gunicorn exactly like the product (`gunicorn bench.bare_app:application`), so the
redeem benchmark can compare Django + redeem against Django alone on the same stack.
"""

import json
import os

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bare_settings"


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    """Parse the same JSON body the redeem call sends and answer with a small JSON object."""
    body = json.loads(request.body or b"{}")
    return JsonResponse({"ok": True, "scanCode": body.get("scanCode")})


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bare", bare), path("bare-health", health)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
