"""Revoke a server key by its id or its display prefix; it stops working at once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.services import keys


class Command(BaseCommand):
    help = "Revoke a server key, given its id or its prefix (as listed, e.g. rk_AbCd1234)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="The key's id or display prefix.")

    def handle(self, *args: Any, key: str, **options: Any) -> None:
        try:
            found = keys.server_key_find(key)
            already = found.revoked_at is not None
            revoked = keys.server_key_revoke(
                actor=Actor.system("manage.py revoke_server_key"), reference=str(found.pk)
            )
        except exc.RedemptionError as err:
            problem = err.details.get("fields", {}).get("key", err.message)
            raise CommandError(f"{key}: {problem}") from None
        state = "was already revoked" if already else "is revoked"
        self.stdout.write(f"Server key {revoked.pk} “{revoked.name}” ({revoked.prefix}…) {state}.")
