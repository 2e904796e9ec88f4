"""Create or update a brainCloud app (SPEC §11) and print its app id and secret."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from redemption import exceptions as exc
from redemption import rules
from redemption.actors import Actor
from redemption.services.braincloud_apps import AppChange, braincloud_app_save


class Command(BaseCommand):
    help = (
        "Create a brainCloud app, or update it when APP_ID exists (options not given keep "
        "their value). Prints the app id and the secret on stdout. Changing the secret ends "
        "the app's client sessions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_id", metavar="APP_ID", help=rules.WIRE_APP_ID_RULE + ".")
        secret = parser.add_mutually_exclusive_group()
        secret.add_argument(
            "--secret",
            help=f"The app secret ({rules.WIRE_APP_SECRET_RULE}); default for a new app: "
            "a generated one.",
        )
        secret.add_argument("--rotate-secret", action="store_true", help="Generate a new secret.")
        parser.add_argument("--name", help="A name to tell the app apart in the portal.")
        anonymous = parser.add_mutually_exclusive_group()
        anonymous.add_argument(
            "--allow-anonymous",
            dest="allow_anonymous",
            action="store_const",
            const=True,
            help="Allow Anonymous sign-in (External is always allowed).",
        )
        anonymous.add_argument(
            "--no-allow-anonymous",
            dest="allow_anonymous",
            action="store_const",
            const=False,
            help="Refuse Anonymous sign-in (the default for a new app).",
        )
        parser.add_argument(
            "--session-seconds",
            type=int,
            help=f"Session lifetime, sliding with each packet "
            f"({rules.WIRE_SESSION_SECONDS_MIN}-{rules.WIRE_SESSION_SECONDS_MAX}; "
            f"default {rules.WIRE_SESSION_SECONDS_DEFAULT}).",
        )

    def handle(
        self,
        *args: Any,
        app_id: str,
        secret: str | None = None,
        rotate_secret: bool = False,
        name: str | None = None,
        allow_anonymous: bool | None = None,
        session_seconds: int | None = None,
        **options: Any,
    ) -> None:
        change = AppChange(
            name=name,
            secret=secret,
            rotate_secret=rotate_secret,
            allow_anonymous=allow_anonymous,
            session_seconds=session_seconds,
        )
        try:
            app, created = braincloud_app_save(
                actor=Actor.system("manage.py create_braincloud_app"), app_id=app_id, change=change
            )
        except exc.RedemptionError as err:
            raise CommandError(f"{err.message} {err.details.get('fields', '')}".strip()) from None
        types = ", ".join(app.auth_types)
        self.stderr.write(
            f"{'Created' if created else 'Updated'} brainCloud app {app.app_id} "
            f"“{app.name}”: sign-in {types}, sessions {app.session_seconds} s, "
            f"{'enabled' if app.is_enabled else 'disabled'}."
        )
        self.stdout.write(f"app id: {app.app_id}")
        self.stdout.write(f"secret: {app.secret}")
