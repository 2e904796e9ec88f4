"""brainCloud apps (superusers and management commands): create, update, rotate the secret,
disable. Disabling an app or changing its secret ends its client sessions."""

import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from redemption import exceptions as exc
from redemption import rules
from redemption.actors import Actor
from redemption.models import BraincloudApp, WireSession
from redemption.services._common import audit, require_admin

SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh app secret (32 URL-safe characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


@dataclass(frozen=True)
class AppChange:
    """What to set on an app; None leaves a field as it is (or at its default on create)."""

    name: str | None = None
    secret: str | None = None
    rotate_secret: bool = False
    allow_anonymous: bool | None = None
    session_seconds: int | None = None
    enabled: bool | None = None


def _check(app_id: str, change: AppChange) -> None:
    errors: dict[str, str] = {}
    if not rules.is_wire_app_id(app_id):
        errors["appId"] = rules.WIRE_APP_ID_RULE
    if change.secret is not None and change.rotate_secret:
        errors["secret"] = "give a secret or ask for a new one, not both"  # noqa: S105
    elif change.secret is not None and not rules.is_wire_app_secret(change.secret):
        errors["secret"] = rules.WIRE_APP_SECRET_RULE
    if change.name is not None and not rules.is_text_of(change.name, 0, rules.WIRE_APP_NAME_MAX):
        errors["name"] = f"at most {rules.WIRE_APP_NAME_MAX} characters"
    if change.session_seconds is not None and not rules.is_whole_number_in(
        change.session_seconds, rules.WIRE_SESSION_SECONDS_MIN, rules.WIRE_SESSION_SECONDS_MAX
    ):
        errors["sessionSeconds"] = rules.whole_number_rule(
            rules.WIRE_SESSION_SECONDS_MIN, rules.WIRE_SESSION_SECONDS_MAX
        )
    if errors:
        raise exc.invalid_fields(errors)


def braincloud_app_save(
    *, actor: Actor, app_id: str, change: AppChange
) -> tuple[BraincloudApp, bool]:
    """Create the app `app_id` or update it with `change`; return it and whether it is new.

    A new app gets a generated secret unless one is given. Fields the change leaves at None
    keep their value. Changing the secret or disabling the app ends its sessions.
    """
    require_admin(actor)
    _check(app_id, change)
    now = timezone.now()
    try:
        with transaction.atomic():
            app = BraincloudApp.objects.select_for_update().filter(app_id=app_id).first()
            created = app is None
            if app is None:
                app = BraincloudApp(app_id=app_id, secret="", created_at=now, updated_at=now)
            changed = _apply(app, change, created=created)
            if created or changed:
                app.updated_at = now
                app.save()
                if not created and ("secret" in changed or not app.is_enabled):
                    WireSession.objects.filter(app=app).delete()
                audit(
                    actor=actor,
                    action="braincloud_app.create" if created else "braincloud_app.update",
                    target_id=app.app_id,
                    details={"changed": sorted(changed)} if not created else _summary(app),
                    at=now,
                )
    except IntegrityError:  # created by someone else meanwhile
        raise exc.invalid_fields({"appId": "an app with this id was just created"}) from None
    return app, created


def _apply(app: BraincloudApp, change: AppChange, *, created: bool) -> set[str]:
    """Set what the change names; return the names of the fields that changed."""
    changed: set[str] = set()
    secret = change.secret
    if change.rotate_secret or (created and secret is None):
        secret = new_secret()
    wanted = {
        "secret": secret,
        "name": None if change.name is None else change.name.strip(),
        "allow_anonymous": change.allow_anonymous,
        "session_seconds": change.session_seconds,
        "is_enabled": change.enabled,
    }
    for field, value in wanted.items():
        if value is not None and getattr(app, field) != value:
            setattr(app, field, value)
            changed.add(field)
    return changed


def _summary(app: BraincloudApp) -> dict[str, object]:
    return {
        "name": app.name,
        "allowAnonymous": app.allow_anonymous,
        "sessionSeconds": app.session_seconds,
        "enabled": app.is_enabled,
    }
