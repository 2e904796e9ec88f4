"""What every portal view shares: role checks, the staff actor, errors turned into messages."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from redemption import masking, permissions, rules, selectors
from redemption.actors import Actor
from redemption.exceptions import InvalidParameterError, RedemptionError
from redemption.forms import PortalForm
from redemption.selectors import KeysetPage

View = Callable[..., HttpResponseBase]
ADMIN = "Admin"
# A page link whose cursor no list handed out (edited by hand, or from another deployment).
STALE_PAGE = "That page link is no longer valid; here is the first page."


def role_required(role: str) -> Callable[[View], View]:
    """Let signed-in staff holding `role` (or higher) through; others get 403 (or sign-in)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            allowed = (
                permissions.is_admin(request.user)
                if role == ADMIN
                else permissions.has_role(request.user, role)
            )
            if not allowed:
                raise PermissionDenied(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


viewer_required = role_required(permissions.VIEWER)
support_required = role_required(permissions.SUPPORT)
ops_required = role_required(permissions.OPS)
admin_required = role_required(ADMIN)


def staff_actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user)


def code_reader(request: HttpRequest) -> masking.CodeReader:
    """How the signed-in user sees codes (Viewers: live codes masked)."""
    return masking.reader_for(request.user)


def error_text(error: RedemptionError) -> str:
    """The error's message plus the fields it names, for a flash message."""
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if isinstance(fields, dict) and fields:
        listed = "; ".join(f"{k}: {v}" for k, v in fields.items())
        return f"{error.message} ({listed})"
    return error.message


def report_error(
    request: HttpRequest,
    error: RedemptionError,
    form: PortalForm | None = None,
) -> None:
    """Show a domain error: next to the form fields it names when possible, else as a message.

    The form says where each service field goes (`PortalForm.service_fields`).
    """
    if isinstance(error, PermissionDenied):
        raise error
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    placed = False
    if form is not None and isinstance(fields, dict):
        for key, text in fields.items():
            target = form.field_for(key)
            if target and target in form.fields:
                form.add_error(target, str(text))
                placed = True
    if placed:
        messages.error(request, error.message)
    else:
        messages.error(request, error_text(error))


def newest_first(
    request: HttpRequest, qs: QuerySet[Any], *, kind: str, time_field: str, per_page: int
) -> KeysetPage | None:
    """The page of `qs` the request's after/before cursor and per_page (clamped to the
    portal's maximum) ask for, newest first; None (with a message) for a stale cursor."""
    try:
        return selectors.newest_first_page(
            qs,
            kind=kind,
            time_field=time_field,
            after=request.GET.get("after") or None,
            before=request.GET.get("before") or None,
            per_page=rules.portal_per_page(request.GET.get("per_page"), per_page),
        )
    except InvalidParameterError:
        messages.error(request, STALE_PAGE)
        return None


def page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    nav: str,
    status: int = 200,
) -> HttpResponse:
    """Render a portal page with the navigation area marked."""
    return render(request, template, {"nav": nav, **(context or {})}, status=status)
