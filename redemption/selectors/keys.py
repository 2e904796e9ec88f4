"""Reads about server keys."""

from datetime import datetime

from django.db.models import Q, QuerySet

from redemption.models import (
    ServerKey,
)


def server_keys() -> QuerySet[ServerKey]:
    return ServerKey.objects.select_related("created_by").order_by("-created_at")


def server_key_alive(key_id: int, now: datetime) -> bool:
    """True while the server key exists, is not revoked and has not expired at `now`."""
    return (
        ServerKey.objects.filter(pk=key_id, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exists()
    )
