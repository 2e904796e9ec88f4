"""Reads about staff logins: the staff list, and what second factor a login has."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from redemption import permissions, sign_in_limits


@dataclass(frozen=True)
class StaffRow:
    """One line of the staff list."""

    id: int
    username: str
    role: str  # admin, Ops, Support, Viewer, or "" for none
    is_active: bool
    last_login: datetime | None
    locked: bool
    second_factor: bool


def has_second_factor(user: Any) -> bool:
    """Whether the login signs in with a one-time code after its password."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_codes_left(user: Any) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def staff_user_get(user_id: int) -> Any:
    """The login with this id, or None."""
    return get_user_model().objects.filter(pk=user_id).first()


def staff_users(*, user_id: int | None = None) -> list[StaffRow]:
    """Every login (or the one with `user_id`), by user name, with its role, lock and second
    factor (three queries)."""
    qs = get_user_model().objects.all()
    if user_id is not None:
        qs = qs.filter(pk=user_id)
    users = list(
        qs.order_by("username")
        .prefetch_related("groups")
        .annotate(has_totp=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)))
    )
    locked = sign_in_limits.locked_accounts([u.get_username() for u in users])
    return [
        StaffRow(
            id=u.pk,
            username=u.get_username(),
            role=permissions.role_of(u),
            is_active=u.is_active,
            last_login=u.last_login,
            locked=u.get_username() in locked,
            second_factor=bool(u.has_totp),
        )
        for u in users
    ]
