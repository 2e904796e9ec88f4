import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from portal.drain import DrainUnreadBody

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = DrainUnreadBody(
    get_wsgi_application(),
    max_bytes=settings.REQUEST_DRAIN_MAX_BYTES,
    max_seconds=settings.REQUEST_DRAIN_MAX_SECONDS,
)
