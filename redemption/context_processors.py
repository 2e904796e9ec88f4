from typing import Any

from django.http import HttpRequest

from redemption import masking, permissions


def roles(request: HttpRequest) -> dict[str, Any]:
    """Expose what the signed-in staff user may do, so templates hide what they cannot use."""
    user = getattr(request, "user", None)
    rank = permissions.role_rank(user)
    return {
        "role_name": permissions.role_name(user),
        "can_view": rank >= 1,
        "can_support": rank >= 2,
        "can_ops": rank >= 3,
        "can_admin": rank >= 4,
        # How this user sees codes (live ones masked for Viewers); templates pass it on.
        "code_reader": masking.reader_for(user),
    }
