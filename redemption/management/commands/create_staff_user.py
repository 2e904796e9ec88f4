"""Create (or update) a portal staff login with one role: Viewer, Support, Ops or admin."""

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from redemption import permissions
from redemption.actors import Actor
from redemption.services._common import audit

ADMIN = "admin"
ROLES = (*permissions.ROLE_ORDER, ADMIN)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def ensure_staff_user(
    *, actor: Actor, username: str, role: str, password: str | None = None
) -> tuple[Any, str, bool]:
    """Create or update a login holding exactly `role`; return (user, password, created).

    Without a password a random one is set (and returned), so the caller can show it.
    `admin` is a superuser (every right, including server keys and staff users).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    password = password or new_password()
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_active = True
        user.is_superuser = user.is_staff = role == ADMIN
        user.save()
        user.groups.set([] if role == ADMIN else [Group.objects.get(name=role)])
        audit(
            actor=actor,
            action="staff_user.create" if created else "staff_user.update",
            target_id=str(user.pk),
            details={"username": username, "role": role},
        )
    return user, password, created


class Command(BaseCommand):
    help = (
        "Create a staff login with one role (Viewer, Support, Ops, or admin = superuser). "
        "An existing login gets the role and a new password. Without --password a random "
        "password is generated and printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", default=None, help="Default: a generated password.")

    def handle(self, *args: Any, username: str, role: str, password: str | None, **options: Any):
        user_model = get_user_model()
        if password is not None:
            existing = user_model.objects.filter(username=username).first()
            try:
                validate_password(password, existing or user_model(username=username))
            except ValidationError as err:
                raise CommandError("Password refused: " + " ".join(err.messages)) from None
        user, password_set, created = ensure_staff_user(
            actor=Actor.system("cli:create_staff_user"),
            username=username,
            role=role,
            password=password,
        )
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} staff user “{user.get_username()}” with role {role}.")
        if password is None:
            self.stdout.write(f"Password: {password_set}")
