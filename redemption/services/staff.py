"""Staff logins: what superusers change about them (role, active, password, sign-in lock,
second factor) and each user's own second factor. Every change is audited.

A new login, and one whose password a superuser resets, gets no password anyone knows: the
superuser is shown a set-password link once and hands it over; the link works once (Django's
password-reset token is bound to the password and the last sign-in) and expires after
PASSWORD_RESET_TIMEOUT. Nobody can demote, deactivate or otherwise remove the last active
superuser, nor take away their own superuser flag; the superusers are locked while this is
checked, so two superusers demoting each other at once cannot both succeed.
"""

import binascii
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp import verify_token as otp_verify_token
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from redemption import exceptions as exc
from redemption import permissions, rules, sign_in_limits
from redemption.actors import Actor
from redemption.db import staff as staff_db
from redemption.services._common import audit

ADMIN = "admin"
ROLES: tuple[str, ...] = (*permissions.ROLE_ORDER, ADMIN)
USERNAME_MAX = 150
TOTP_NAME, RECOVERY_NAME = "authenticator app", "recovery codes"


def require_admin(actor: Actor) -> None:
    """Only superusers (and the system, e.g. a management command) manage staff logins."""
    if actor.kind == "system":
        return
    if actor.kind == "staff" and permissions.is_admin(actor.user):
        return
    raise exc.PermissionDeniedError("Only a superuser may manage staff users.")


def _apply_role(user: Any, role: str) -> None:
    user.is_superuser = user.is_staff = role == ADMIN
    user.save(update_fields=["is_superuser", "is_staff"])
    user.groups.set([] if role == ADMIN else [Group.objects.get_or_create(name=role)[0]])


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise exc.invalid_fields({"role": "must be one of " + ", ".join(ROLES)})


def _user(user_id: int) -> Any:
    user = staff_db.user_for_update(user_id)
    if user is None:
        raise exc.invalid_fields({"user": "no such staff user"}, "No staff user has that id.")
    return user


def _keep_a_superuser(actor: Actor, user: Any, *, what: str) -> None:
    """Refuse a change that takes `user`'s superuser rights away from themselves, or from the
    last active superuser (call with the superusers locked)."""
    if not (user.is_superuser and user.is_active):
        return
    if actor.kind == "staff" and actor.user is not None and actor.user.pk == user.pk:
        raise exc.invalid_fields(
            {"user": "is you"},
            f"You cannot {what} yourself: ask another superuser, so that someone who can "
            "manage staff users remains.",
        )
    others = [pk for pk in staff_db.active_superusers_for_update() if pk != user.pk]
    if not others:
        raise exc.invalid_fields(
            {"user": "is the last active superuser"},
            f"{user.get_username()} is the last active superuser; make someone else a "
            f"superuser before you {what} this one.",
        )


@dataclass(frozen=True)
class SetPasswordLink:
    """A one-time link (path only) with which a staff user chooses their own password."""

    path: str


def _set_password_link(user: Any) -> SetPasswordLink:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return SetPasswordLink(reverse("password_set", args=[uid, token]))


def staff_user_create(*, actor: Actor, username: str, role: str) -> tuple[Any, SetPasswordLink]:
    """Create a login with one role and no usable password; return it and its set-password link."""
    require_admin(actor)
    _check_role(role)
    username = (username or "").strip()
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        username = ""
    if not 1 <= len(username) <= USERNAME_MAX:
        raise exc.invalid_fields(
            {"username": f"must be 1-{USERNAME_MAX} letters, digits and @ . + - _"}
        )
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.filter(username__iexact=username).exists():
            raise exc.invalid_fields(
                {"username": "is taken (names differing only in case count as the same)"}
            )
        user = user_model(username=username, is_active=True)
        user.set_unusable_password()
        user.save()
        _apply_role(user, role)
        audit(
            actor=actor,
            action="staff_user.create",
            target_id=str(user.pk),
            details={"username": username, "role": role},
        )
    return user, _set_password_link(user)


def staff_user_role_set(*, actor: Actor, user_id: int, role: str) -> Any:
    """Give a login exactly one role (admin = superuser)."""
    require_admin(actor)
    _check_role(role)
    with transaction.atomic():
        staff_db.active_superusers_for_update()  # first, always in the same order
        user = _user(user_id)
        before = permissions.role_of(user)
        if before == role:
            return user
        if role != ADMIN:
            _keep_a_superuser(actor, user, what="take the superuser role from")
        _apply_role(user, role)
        audit(
            actor=actor,
            action="staff_user.role",
            target_id=str(user.pk),
            details={"username": user.get_username(), "role": {"old": before, "new": role}},
        )
    return user


def staff_user_active_set(*, actor: Actor, user_id: int, active: bool) -> Any:
    """Deactivate a login (it can no longer sign in; its sessions end) or reactivate it."""
    require_admin(actor)
    with transaction.atomic():
        staff_db.active_superusers_for_update()  # first, always in the same order
        user = _user(user_id)
        if user.is_active == active:
            return user
        if not active:
            if actor.kind == "staff" and actor.user is not None and actor.user.pk == user.pk:
                raise exc.invalid_fields({"user": "is you"}, "You cannot deactivate yourself.")
            _keep_a_superuser(actor, user, what="deactivate")
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit(
            actor=actor,
            action="staff_user.activate" if active else "staff_user.deactivate",
            target_id=str(user.pk),
            details={"username": user.get_username()},
        )
    return user


def staff_user_password_reset(*, actor: Actor, user_id: int) -> SetPasswordLink:
    """Make a login's password unusable (its sessions end) and return a set-password link."""
    require_admin(actor)
    with transaction.atomic():
        user = _user(user_id)
        if actor.kind == "staff" and actor.user is not None and actor.user.pk == user.pk:
            raise exc.invalid_fields(
                {"user": "is you"}, "Change your own password with “Change password”."
            )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        audit(
            actor=actor,
            action="staff_user.password_reset",
            target_id=str(user.pk),
            details={"username": user.get_username()},
        )
    return _set_password_link(user)


def staff_user_unlock(*, actor: Actor, user_id: int) -> bool:
    """Clear a login's failed sign-ins so it may sign in again now; True if it had any."""
    require_admin(actor)
    with transaction.atomic():
        user = _user(user_id)
        had = sign_in_limits.account_unlock(user.get_username())
        audit(
            actor=actor,
            action="staff_user.unlock",
            target_id=str(user.pk),
            details={"username": user.get_username(), "hadFailures": had},
        )
    return had


def staff_user_second_factor_reset(*, actor: Actor, user_id: int) -> int:
    """Remove a login's second factor (lost phone); return how many devices went."""
    require_admin(actor)
    with transaction.atomic():
        user = _user(user_id)
        removed = _devices_delete(user)
        audit(
            actor=actor,
            action="staff_user.second_factor_reset",
            target_id=str(user.pk),
            details={"username": user.get_username(), "devices": removed},
        )
    return removed


# --- one's own second factor --------------------------------------------------------------------


def _devices_delete(user: Any) -> int:
    totp, _ = TOTPDevice.objects.filter(user=user).delete()
    static, _ = StaticDevice.objects.filter(user=user).delete()
    return int(totp + static)


def _code_matches_key(key_hex: str, code: str) -> int | None:
    """The TOTP time step `code` is right for under `key_hex` (one step either side), or None."""
    digits = code.strip().replace(" ", "")
    if len(digits) != rules.TOTP_DIGITS or not digits.isdigit():
        return None
    try:
        totp = TOTP(binascii.unhexlify(key_hex.encode()), digits=rules.TOTP_DIGITS)
    except (binascii.Error, ValueError):
        return None
    totp.time = time.time()
    return totp.t() if totp.verify(int(digits), tolerance=1) else None


def _recovery_codes(device: StaticDevice) -> list[str]:
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(rules.RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def second_factor_enrol(*, actor: Actor, key_hex: str, code: str) -> list[str]:
    """Turn on the actor's second factor with the secret they scanned, once one code from their
    app proves it; return the new recovery codes (shown once)."""
    user = actor.user
    if actor.kind != "staff" or user is None:
        raise exc.PermissionDeniedError()
    step = _code_matches_key(key_hex, code)
    if step is None:
        raise exc.invalid_fields(
            {"code": "is not the code your app shows now"},
            "That code does not match: check the time on your phone and enter the code your "
            "app shows now.",
        )
    with transaction.atomic():
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise exc.invalid_fields(
                {"code": "two-factor sign-in is already on"},
                "Two-factor sign-in is already on for this account.",
            )
        _devices_delete(user)
        TOTPDevice.objects.create(
            user=user,
            name=TOTP_NAME,
            key=key_hex,
            digits=rules.TOTP_DIGITS,
            confirmed=True,
            last_t=step,
        )
        recovery = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
        codes = _recovery_codes(recovery)
        audit(
            actor=actor,
            action="staff_user.second_factor_on",
            target_id=str(user.pk),
            details={"username": user.get_username(), "recoveryCodes": len(codes)},
        )
    return codes


def second_factor_verify(*, user: Any, code: str) -> Device | None:
    """The device that accepts `code` (a one-time code, or a recovery code, which is used up
    by it), or None. Each device is locked while it checks, so a code counts once."""
    cleaned = code.strip().replace(" ", "").replace("-", "")
    if not cleaned:
        return None
    if cleaned.isdigit():
        totp = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if totp is not None and otp_verify_token(user, totp.persistent_id, cleaned):
            return totp
        return None
    recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if recovery is None:
        return None
    with transaction.atomic():
        device = otp_verify_token(user, recovery.persistent_id, cleaned.lower())
        if device is not None:
            left = StaticToken.objects.filter(device=recovery).count()
            audit(
                actor=Actor.staff(user),
                action="staff_user.recovery_code_used",
                target_id=str(user.pk),
                details={"username": user.get_username(), "recoveryCodesLeft": left},
            )
    return device


def second_factor_recovery_renew(*, actor: Actor, code: str) -> list[str]:
    """New recovery codes for the actor (the old ones stop working), after a one-time code."""
    user = actor.user
    if actor.kind != "staff" or user is None:
        raise exc.PermissionDeniedError()
    _require_current_code(user, code)
    with transaction.atomic():
        recovery, _ = StaticDevice.objects.get_or_create(
            user=user, defaults={"name": RECOVERY_NAME, "confirmed": True}
        )
        codes = _recovery_codes(recovery)
        audit(
            actor=actor,
            action="staff_user.recovery_codes_renewed",
            target_id=str(user.pk),
            details={"username": user.get_username(), "recoveryCodes": len(codes)},
        )
    return codes


def second_factor_turn_off(*, actor: Actor, code: str) -> None:
    """Turn off the actor's own second factor, after a one-time code, unless their role
    requires one."""
    user = actor.user
    if actor.kind != "staff" or user is None:
        raise exc.PermissionDeniedError()
    if permissions.second_factor_required(user):
        raise exc.invalid_fields(
            {"code": "your role requires two-factor sign-in"},
            "Your role requires two-factor sign-in; it cannot be turned off.",
        )
    _require_current_code(user, code)
    with transaction.atomic():
        removed = _devices_delete(user)
        audit(
            actor=actor,
            action="staff_user.second_factor_off",
            target_id=str(user.pk),
            details={"username": user.get_username(), "devices": removed},
        )


def _require_current_code(user: Any, code: str) -> None:
    if not code.strip().isdigit() or second_factor_verify(user=user, code=code) is None:
        raise exc.invalid_fields(
            {"code": "is not the code your app shows now"},
            "That code does not match the one your authenticator app shows now.",
        )
