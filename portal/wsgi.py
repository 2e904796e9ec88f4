import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from portal.drain import DrainUnreadBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = DrainUnreadBody(
    get_wsgi_application(),
    max_bytes=settings.REQUEST_DRAIN_MAX_BYTES,
    max_seconds=settings.REQUEST_DRAIN_MAX_SECONDS,
)

# Import the URLconf, and with it every view, while the worker boots. Django would do it in the
# worker's first request, which then took ~50 ms of CPU (more on a busy host) while the requests
# behind it on that worker waited.
get_resolver().resolve("/healthz")
