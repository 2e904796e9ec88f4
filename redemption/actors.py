"""Who is acting: a staff user, a server key, an end-user profile, or the system itself."""

from dataclasses import dataclass, field
from typing import Any

from redemption import permissions


@dataclass(frozen=True)
class Actor:
    """The caller of a service, recorded on every audit event."""

    kind: str  # "staff" | "server_key" | "profile" | "system"
    id: str
    label: str
    user: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def staff(cls, user: Any) -> "Actor":
        return cls(kind="staff", id=str(user.pk), label=user.get_username(), user=user)

    @classmethod
    def server_key(cls, key: Any) -> "Actor":
        return cls(kind="server_key", id=str(key.pk), label=f"server key {key.name}")

    @classmethod
    def profile(cls, profile_id: str, name: str | None = None) -> "Actor":
        return cls(kind="profile", id=profile_id, label=name or profile_id)

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(kind="system", id="", label=label)

    def has_role(self, role: str) -> bool:
        """Server keys and the system act with full rights; staff by their group; profiles never."""
        if self.kind in {"server_key", "system"}:
            return True
        if self.kind == "staff":
            return permissions.has_role(self.user, role)
        return False


@dataclass(frozen=True)
class Profile:
    """An end user of the client app."""

    id: str
    name: str | None = None
