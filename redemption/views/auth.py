"""Staff sign-in (password, then a one-time code for accounts with a second factor), the
second factor's own page, setting a password from a one-time link, and password change.

The sign-in limits (redemption.sign_in_limits) count every password and code tried; when they
refuse, the page says sign-in is paused, in the same words whether the account exists or not.
"""

import base64
import binascii
import math
from typing import Any

import django_otp
import segno
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from redemption import exceptions as exc
from redemption import permissions, rules, selectors, sign_in_limits
from redemption.forms import OneTimeCodeForm
from redemption.services import staff
from redemption.views._common import report_error, staff_actor

# The half-done sign-in of an account with a second factor: who, which backend, since when,
# and where to go after the code.
PENDING = "sign_in_pending"
# The secret shown on the enrolment page until a code from the app confirms it.
ENROL_KEY = "second_factor_enrol_key"
ENROL_KEY_BYTES = 20


def _paused(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 429
) -> HttpResponse:
    seconds = sign_in_limits.retry_after(request)
    context = {**context, "paused": True, "retry_minutes": max(1, math.ceil(seconds / 60))}
    response = render(request, template, context, status=status)
    response["Retry-After"] = str(seconds)
    return response


def sign_in_paused(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' lockout response (AXES_LOCKOUT_CALLABLE): the sign-in page, paused."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    return _paused(
        request,
        "registration/login.html",
        {"form": form, "next": request.POST.get("next", "")},
    )


class SignInView(auth_views.LoginView):
    """User name and password; accounts with a second factor go on to the code step."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        sign_in_limits.try_succeeded(self.request)  # the password was right: no failure
        if not selectors.has_second_factor(user):
            return super().form_valid(form)
        self.request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "at": timezone.now().timestamp(),
            "next": self.get_success_url(),
        }
        return redirect("sign_in_code")


def _pending_user(request: HttpRequest) -> tuple[Any, dict[str, Any]] | None:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    age = timezone.now().timestamp() - float(pending.get("at", 0))
    user = selectors.staff_user_get(int(pending.get("user", 0)))
    if age > rules.SIGN_IN_SECOND_STEP_SECONDS or user is None or not user.is_active:
        request.session.pop(PENDING, None)
        return None
    return user, pending


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def sign_in_code(request: HttpRequest) -> HttpResponse:
    """The second step: a one-time code from the app, or a recovery code (used up by it)."""
    found = _pending_user(request)
    if found is None:
        messages.info(request, "Please sign in again.")
        return redirect("login")
    user, pending = found
    form = OneTimeCodeForm(request.POST or None)
    template = "registration/login_code.html"
    if request.method == "POST" and form.is_valid():
        if not sign_in_limits.try_take(request, username=user.get_username()):
            return _paused(request, template, {"form": OneTimeCodeForm()})
        device = staff.second_factor_verify(user=user, code=form.cleaned_data["code"])
        if device is None:
            form.add_error("code", "That code is not valid. Enter the code your app shows now.")
        else:
            sign_in_limits.try_succeeded(request)
            del request.session[PENDING]
            auth.login(request, user, backend=pending["backend"])
            django_otp.login(request, device)
            next_url = str(pending.get("next") or "")
            allowed = url_has_allowed_host_and_scheme(
                next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
            )
            return redirect(next_url if allowed else settings.LOGIN_REDIRECT_URL)
    return render(request, template, {"form": form})


def _group(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def _enrol_context(request: HttpRequest) -> dict[str, Any]:
    """The secret to scan (kept in the session until confirmed), as a QR code and as text."""
    key = request.session.get(ENROL_KEY)
    if not isinstance(key, str):
        key = random_hex(ENROL_KEY_BYTES)
        request.session[ENROL_KEY] = key
    device = TOTPDevice(user=request.user, key=key, digits=rules.TOTP_DIGITS)
    qr = segno.make(device.config_url, error="m")
    secret = base64.b32encode(binascii.unhexlify(key)).decode()
    return {
        "qr_data_uri": qr.svg_data_uri(scale=5, dark="#111827", light="#ffffff"),
        "secret": _group(secret),
    }


@login_required
@sensitive_post_parameters("code")
@never_cache
def second_factor(request: HttpRequest) -> HttpResponse:
    """Turn on two-factor sign-in (QR code, one code to confirm, recovery codes shown once),
    or, when it is on, renew the recovery codes or turn it off."""
    user = request.user
    enrolled = selectors.has_second_factor(user)
    required = permissions.second_factor_required(user)
    form = OneTimeCodeForm(request.POST or None)
    action = request.POST.get("action", "")
    context: dict[str, Any] = {"form": form, "enrolled": enrolled, "required": required}
    template = "registration/second_factor.html"
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        try:
            if action == "enrol" and not enrolled:
                recovery = staff.second_factor_enrol(
                    actor=staff_actor(request),
                    key_hex=str(request.session.get(ENROL_KEY, "")),
                    code=code,
                )
                request.session.pop(ENROL_KEY, None)
                device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
                django_otp.login(request, device)
                return render(request, template, {"recovery_codes": recovery, "new": True})
            if action == "renew" and enrolled:
                recovery = staff.second_factor_recovery_renew(actor=staff_actor(request), code=code)
                return render(request, template, {"recovery_codes": recovery, "new": False})
            if action == "off" and enrolled:
                staff.second_factor_turn_off(actor=staff_actor(request), code=code)
                messages.success(request, "Two-factor sign-in is off for your account.")
                return redirect("second_factor")
        except exc.RedemptionError as error:
            report_error(request, error, form)
    if enrolled:
        context["recovery_left"] = selectors.recovery_codes_left(user)
    else:
        context.update(_enrol_context(request))
    return render(request, template, {**context, "nav": "account"})


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """A staff user chooses their password from the one-time link a superuser gave them."""

    template_name = "registration/password_set_form.html"
    success_url = reverse_lazy("password_set_done")


class PasswordSetDoneView(auth_views.PasswordResetCompleteView):
    template_name = "registration/password_set_done.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("redemption:dashboard")

    def form_valid(self, form: Any) -> HttpResponse:
        messages.success(self.request, "Your password has been changed.")
        return super().form_valid(form)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "nav": "account"}


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"
