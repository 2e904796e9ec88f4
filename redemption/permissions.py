"""Staff roles (Django groups made by a migration) and the checks every view and service uses."""

from typing import Any

from django.conf import settings

VIEWER, SUPPORT, OPS = "Viewer", "Support", "Ops"
ROLE_ORDER = (VIEWER, SUPPORT, OPS)
ROLE_RANK = {VIEWER: 1, SUPPORT: 2, OPS: 3}
ADMIN_RANK = 4


def role_rank(user: Any) -> int:
    """Return the user's highest role rank: 0 none, 1 Viewer, 2 Support, 3 Ops, 4 superuser."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return 0
    if user.is_superuser:
        return ADMIN_RANK
    cached = getattr(user, "_redemption_role_rank", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = max((ROLE_RANK[n] for n in names if n in ROLE_RANK), default=0)
        user._redemption_role_rank = cached
    return cached


def role_name(user: Any) -> str:
    rank = role_rank(user)
    if rank == ADMIN_RANK:
        return "Admin"
    return ROLE_ORDER[rank - 1] if rank else "No role"


def has_role(user: Any, role: str) -> bool:
    return role_rank(user) >= ROLE_RANK[role]


def is_admin(user: Any) -> bool:
    return role_rank(user) >= ADMIN_RANK


def role_setting_name(user: Any) -> str:
    """The role as STAFF_2FA_REQUIRED_ROLES names it: admin, Ops, Support, Viewer ("" for none)."""
    rank = role_rank(user)
    if rank == ADMIN_RANK:
        return "admin"
    return ROLE_ORDER[rank - 1] if rank else ""


def second_factor_required(user: Any) -> bool:
    """Whether this user's role must sign in with a second factor (STAFF_2FA_REQUIRED_ROLES)."""
    required = settings.STAFF_2FA_REQUIRED_ROLES
    return bool(required) and role_setting_name(user) in required


def role_of(user: Any) -> str:
    """The one role a login holds as the portal names it (admin, Ops, Support, Viewer; "" for
    none), read from its groups (prefetched ones too)."""
    if user.is_superuser:
        return "admin"
    names = {g.name for g in user.groups.all()}
    return next((r for r in reversed(ROLE_ORDER) if r in names), "")
