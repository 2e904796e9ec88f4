"""brainCloud apps (superusers): list, create, edit, rotate the secret, disable and enable."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from redemption import exceptions as exc
from redemption import selectors
from redemption.forms import BraincloudAppCreateForm, BraincloudAppEditForm
from redemption.models import BraincloudApp
from redemption.services.braincloud_apps import AppChange, braincloud_app_save
from redemption.views._common import admin_required, page, report_error, staff_actor

NAV = "braincloud"


@admin_required
def braincloud_apps(request: HttpRequest) -> HttpResponse:
    """List the apps; a valid POST creates one."""
    form = BraincloudAppCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            app, created = braincloud_app_save(
                actor=staff_actor(request),
                app_id=data["app_id"],
                change=AppChange(
                    name=data["name"],
                    secret=data["secret"] or None,
                    allow_anonymous=data["allow_anonymous"],
                    session_seconds=data["session_seconds"],
                ),
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            if created:
                messages.success(request, f"brainCloud app {app.app_id} created.")
                return redirect("redemption:braincloud_app", app_id=app.app_id)
            form.add_error("app_id", "An app with this id exists: change it on its own page.")
    return page(
        request,
        "redemption/braincloud_apps.html",
        {"apps": selectors.braincloud_apps(), "form": form},
        nav=NAV,
    )


def _app(app_id: str) -> BraincloudApp:
    app = selectors.braincloud_app_get(app_id)
    if app is None:
        raise Http404("No brainCloud app has this id.")
    return app


@admin_required
def braincloud_app(request: HttpRequest, app_id: str) -> HttpResponse:
    """One app: its secret and settings; a valid POST saves the settings."""
    app = _app(app_id)
    initial = {
        "name": app.name,
        "allow_anonymous": app.allow_anonymous,
        "session_seconds": app.session_seconds,
        "enabled": app.is_enabled,
    }
    form = BraincloudAppEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            braincloud_app_save(
                actor=staff_actor(request),
                app_id=app.app_id,
                change=AppChange(
                    name=data["name"],
                    allow_anonymous=data["allow_anonymous"],
                    session_seconds=data["session_seconds"],
                    enabled=data["enabled"],
                ),
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"brainCloud app {app.app_id} saved.")
            return redirect("redemption:braincloud_app", app_id=app.app_id)
    return page(
        request,
        "redemption/braincloud_app.html",
        {"app": app, "form": form, "sessions": selectors.braincloud_app_sessions(app)},
        nav=NAV,
    )


def _change(request: HttpRequest, app: BraincloudApp, change: AppChange, done: str) -> HttpResponse:
    """Apply one change from a button, report how it went, and go back to the app's page."""
    try:
        braincloud_app_save(actor=staff_actor(request), app_id=app.app_id, change=change)
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        messages.success(request, done)
    return redirect("redemption:braincloud_app", app_id=app.app_id)


@admin_required
@require_POST
def braincloud_app_rotate_secret(request: HttpRequest, app_id: str) -> HttpResponse:
    return _change(
        request,
        _app(app_id),
        AppChange(rotate_secret=True),
        "New secret set: clients signed with the old one are refused and every session "
        "ended. Ship the new secret to your clients.",
    )


@admin_required
@require_POST
def braincloud_app_toggle(request: HttpRequest, app_id: str) -> HttpResponse:
    """Disable an enabled app (ending its sessions) or enable a disabled one."""
    app = _app(app_id)
    state = "enabled" if not app.is_enabled else "disabled; its sessions ended"
    return _change(
        request,
        app,
        AppChange(enabled=not app.is_enabled),
        f"brainCloud app {app.app_id} {state}.",
    )
