"""Staff users (superusers): list, create with a role, change role, deactivate, reset the
password, unlock, reset the second factor. A set-password link is shown once, never stored."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from redemption import exceptions as exc
from redemption import selectors
from redemption.forms import StaffRoleForm, StaffUserCreateForm
from redemption.services import staff
from redemption.tables import StaffTable
from redemption.views._common import admin_required, page, report_error, staff_actor

NAV = "staff"


def _link(request: HttpRequest, path: str) -> str:
    return request.build_absolute_uri(path)


def _link_hours() -> int:
    return max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)


@admin_required
def staff_users(request: HttpRequest) -> HttpResponse:
    """Every login with its role, last sign-in, lock and second factor; a POST creates one."""
    form = StaffUserCreateForm(request.POST or None)
    created: dict[str, Any] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            user, link = staff.staff_user_create(
                actor=staff_actor(request),
                username=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Staff user “{user.get_username()}” created.")
            created = {"username": user.get_username(), "link": _link(request, link.path)}
            form = StaffUserCreateForm()
    table = StaffTable(selectors.staff_users())
    return page(
        request,
        "redemption/staff_users.html",
        {"table": table, "form": form, "created": created, "link_hours": _link_hours()},
        nav=NAV,
    )


def _user_or_404(user_id: int) -> Any:
    user = selectors.staff_user_get(user_id)
    if user is None:
        raise Http404("No staff user has that id.")
    return user


@admin_required
def staff_user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    """One login: its state and every action a superuser has on it."""
    user = _user_or_404(user_id)
    (row,) = selectors.staff_users(user_id=user.pk)
    return page(
        request,
        "redemption/staff_user_detail.html",
        {
            "subject": user,
            "row": row,
            "role_form": StaffRoleForm(initial={"role": row.role or "Viewer"}),
            "is_self": user.pk == request.user.pk,
        },
        nav=NAV,
    )


def _act(request: HttpRequest, user_id: int, done: str, call: Any) -> HttpResponse:
    user = _user_or_404(user_id)
    try:
        call(user)
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        messages.success(request, done.format(username=user.get_username()))
    return redirect("redemption:staff_user_detail", user_id=user.pk)


@admin_required
@require_POST
def staff_user_role(request: HttpRequest, user_id: int) -> HttpResponse:
    form = StaffRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("redemption:staff_user_detail", user_id=user_id)
    role = form.cleaned_data["role"]
    return _act(
        request,
        user_id,
        "{username} now has the role " + role + ".",
        lambda u: staff.staff_user_role_set(actor=staff_actor(request), user_id=u.pk, role=role),
    )


@admin_required
@require_POST
def staff_user_active(request: HttpRequest, user_id: int) -> HttpResponse:
    active = request.POST.get("active") == "yes"
    return _act(
        request,
        user_id,
        "{username} is "
        + ("active again." if active else "deactivated: it can no longer sign in."),
        lambda u: staff.staff_user_active_set(
            actor=staff_actor(request), user_id=u.pk, active=active
        ),
    )


@admin_required
@require_POST
def staff_user_unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    return _act(
        request,
        user_id,
        "{username} may sign in again: its failed sign-ins were cleared.",
        lambda u: staff.staff_user_unlock(actor=staff_actor(request), user_id=u.pk),
    )


@admin_required
@require_POST
def staff_user_second_factor_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    return _act(
        request,
        user_id,
        "{username}'s second factor was removed; it signs in with its password and may enrol "
        "again.",
        lambda u: staff.staff_user_second_factor_reset(actor=staff_actor(request), user_id=u.pk),
    )


@admin_required
@require_POST
def staff_user_password_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    """Make the password unusable and show a one-time set-password link, in this response only."""
    user = _user_or_404(user_id)
    try:
        link = staff.staff_user_password_reset(actor=staff_actor(request), user_id=user.pk)
    except exc.RedemptionError as error:
        report_error(request, error)
        return redirect("redemption:staff_user_detail", user_id=user.pk)
    messages.success(
        request, f"{user.get_username()}'s password no longer works. Hand over the link below."
    )
    (row,) = selectors.staff_users(user_id=user.pk)
    return page(
        request,
        "redemption/staff_user_detail.html",
        {
            "subject": user,
            "row": row,
            "role_form": StaffRoleForm(initial={"role": row.role or "Viewer"}),
            "is_self": False,
            "link": _link(request, link.path),
            "link_hours": _link_hours(),
        },
        nav=NAV,
    )
