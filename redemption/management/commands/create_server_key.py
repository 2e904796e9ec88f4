"""Create a server key for a backend; its secret is printed once, on stdout alone."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.services import keys


class Command(BaseCommand):
    help = (
        "Create a server key. The secret goes to stdout (only it, so "
        "KEY=$(manage.py create_server_key NAME) works); notes go to stderr. "
        "It is shown this once: only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What the key is for, e.g. the backend's name.")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        try:
            key, secret = keys.server_key_create(
                actor=Actor.system("manage.py create_server_key"), name=name
            )
        except exc.RedemptionError as err:
            raise CommandError(f"{err.message} {err.details.get('fields', '')}".strip()) from None
        self.stderr.write(
            f"Created server key {key.pk} “{key.name}” ({key.prefix}…). "
            "Store the secret below now: it cannot be shown again."
        )
        self.stdout.write(secret)
