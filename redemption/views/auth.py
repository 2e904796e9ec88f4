"""Staff sign-in throttled against password guessing, and password change."""

import hashlib
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy
from django.utils import timezone

from redemption import metrics
from redemption.cache_guard import CACHE_DOWN, cache_failed, cache_in_use
from redemption.client_ip import client_ip
from redemption.models import RedeemFailure

BUCKET_PREFIX = "login:"


def _bucket(username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{ip}".encode()).hexdigest()[:40]
    return BUCKET_PREFIX + digest


def _use_cache() -> bool:
    return cache_in_use()


def _window() -> int:
    return settings.LOGIN_FAILED_WINDOW_SECONDS


def login_retry_after(username: str, ip: str) -> int | None:
    """Seconds until this username may try again from this address, or None if it may now."""
    key, limit, now = _bucket(username, ip), settings.LOGIN_MAX_FAILED, timezone.now()
    if _use_cache():
        try:
            entry = cache.get(key) or []
        except CACHE_DOWN as err:
            cache_failed(err)
        else:
            recent = [t for t in entry if t > now.timestamp() - _window()]
            if len(recent) < limit:
                return None
            return max(1, math.ceil(min(recent) + _window() - now.timestamp()))
    since = now - timedelta(seconds=_window())
    recent_at = list(
        RedeemFailure.objects.filter(bucket=key, at__gt=since)
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent_at) < limit:
        return None
    return max(1, math.ceil((recent_at[-1] + timedelta(seconds=_window()) - now).total_seconds()))


def login_failed(username: str, ip: str) -> None:
    """Count one failed sign-in for this username from this address."""
    key, now = _bucket(username, ip), timezone.now()
    if _use_cache():
        try:
            entry = [t for t in (cache.get(key) or []) if t > now.timestamp() - _window()]
            cache.set(key, [*entry, now.timestamp()], timeout=_window() + 5)
        except CACHE_DOWN as err:
            cache_failed(err)
        else:
            return
    RedeemFailure.objects.create(bucket=key, at=now)


def login_succeeded(username: str, ip: str) -> None:
    """Forget earlier failures once the right password was given."""
    key = _bucket(username, ip)
    if _use_cache():
        try:
            cache.delete(key)
        except CACHE_DOWN as err:
            cache_failed(err)
    RedeemFailure.objects.filter(bucket=key).delete()


class ThrottledLoginView(auth_views.LoginView):
    """Django's sign-in, refusing a username+address after too many recent failures."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        retry_after = login_retry_after(username, client_ip(request))
        if retry_after is not None:
            metrics.rate_limited(limit="sign_in")
            minutes = max(1, math.ceil(retry_after / 60))
            form = self.get_form_class()(request, initial={"username": username})
            context = self.get_context_data(form=form, throttled=True, retry_minutes=minutes)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(retry_after)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        login_failed(self.request.POST.get("username", ""), client_ip(self.request))
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        login_succeeded(form.get_user().get_username(), client_ip(self.request))
        return super().form_valid(form)


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
