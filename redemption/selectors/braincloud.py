"""Reads about brainCloud apps and their client sessions."""

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from redemption.models import BraincloudApp


def braincloud_apps() -> QuerySet[BraincloudApp]:
    """Every app, with its live session count as `live_sessions`."""
    live = Q(sessions__expires_at__gt=timezone.now(), sessions__logged_out=False)
    return BraincloudApp.objects.annotate(live_sessions=Count("sessions", filter=live)).order_by(
        "app_id"
    )


def braincloud_app_get(app_id: str) -> BraincloudApp | None:
    return BraincloudApp.objects.filter(app_id=app_id).first()


def braincloud_app_sessions(app: BraincloudApp) -> int:
    """How many sessions of `app` are live now."""
    return app.sessions.filter(expires_at__gt=timezone.now(), logged_out=False).count()
