"""Reads about server keys."""

from django.db.models import QuerySet

from redemption.models import (
    ServerKey,
)


def server_keys() -> QuerySet[ServerKey]:
    return ServerKey.objects.select_related("created_by").order_by("-created_at")
