"""Row locks on staff logins, taken while a superuser changes one."""

from typing import Any

from django.contrib.auth import get_user_model


def user_for_update(user_id: int) -> Any:
    """Lock one login (None if there is none with that id)."""
    return get_user_model().objects.select_for_update().filter(pk=user_id).first()


def active_superusers_for_update() -> list[int]:
    """Lock every active superuser, in id order; return their ids."""
    return list(
        get_user_model()
        .objects.select_for_update()
        .filter(is_superuser=True, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
