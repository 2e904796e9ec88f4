"""Unlock a staff login locked by too many failed sign-ins (audited)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from redemption.actors import Actor
from redemption.services import staff


class Command(BaseCommand):
    help = "Clear the failed sign-ins of a staff login so it may sign in again now (audited)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No staff user is named “{username}”.")
        had = staff.staff_user_unlock(actor=Actor.system("cli:unlock_staff"), user_id=user.pk)
        if had:
            self.stdout.write(f"Unlocked “{username}”: its failed sign-ins were cleared.")
        else:
            self.stdout.write(f"“{username}” had no failed sign-ins; nothing to unlock.")
