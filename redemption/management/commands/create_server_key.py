"""Create a server key for a backend; its secret is printed once, on stdout alone."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from redemption import exceptions as exc
from redemption import rules
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
        parser.add_argument(
            "--scopes",
            help="Comma-separated scopes the key may use (default: all of them): "
            + ", ".join(rules.SERVER_KEY_SCOPES)
            + ".",
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            help=f"The key stops working after this many days "
            f"({rules.SERVER_KEY_EXPIRY_DAYS_MIN}-{rules.SERVER_KEY_EXPIRY_DAYS_MAX}; "
            "default: never).",
        )

    def handle(
        self,
        *args: Any,
        name: str,
        scopes: str | None = None,
        expires_in_days: int | None = None,
        **options: Any,
    ) -> None:
        wanted = None
        if scopes is not None:
            wanted = [s.strip() for s in scopes.split(",") if s.strip()]
            unknown = sorted(set(wanted) - set(rules.SERVER_KEY_SCOPES))
            if unknown or not wanted:
                raise CommandError(
                    (f"Unknown scope: {', '.join(unknown)}. " if unknown else "No scope given. ")
                    + "Valid scopes: "
                    + ", ".join(rules.SERVER_KEY_SCOPES)
                    + "."
                )
        try:
            key, secret = keys.server_key_create(
                actor=Actor.system("manage.py create_server_key"),
                name=name,
                scopes=wanted,
                expires_in_days=expires_in_days,
            )
        except exc.RedemptionError as err:
            raise CommandError(f"{err.message} {err.details.get('fields', '')}".strip()) from None
        expiry = f"expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "no expiry"
        self.stderr.write(
            f"Created server key {key.pk} “{key.name}” ({key.prefix}…), "
            f"scopes {', '.join(key.scopes)}, {expiry}. "
            "Store the secret below now: it cannot be shown again."
        )
        self.stdout.write(secret)
