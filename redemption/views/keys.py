"""Server keys (superusers): create — the secret is shown once — and revoke."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from redemption import exceptions as exc
from redemption import selectors
from redemption.forms import ServerKeyForm
from redemption.services import keys
from redemption.tables import ServerKeyTable
from redemption.views._common import admin_required, page, report_error, staff_actor

NAV = "keys"


@admin_required
def server_keys(request: HttpRequest) -> HttpResponse:
    """List keys; a valid POST creates one and this response alone shows its secret."""
    form = ServerKeyForm(request.POST or None)
    created = secret = None
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = keys.server_key_create(
                actor=staff_actor(request),
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_in_days=form.cleaned_data.get("expires_in_days"),
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            # Shown in this response only and kept nowhere (not even the session store):
            # only its hash exists from now on.
            messages.success(request, f"Server key “{key.name}” created. Copy its secret now.")
            created = {"name": key.name}
            form = ServerKeyForm()
    table = ServerKeyTable(selectors.server_keys())
    return page(
        request,
        "redemption/server_keys.html",
        {"table": table, "form": form, "secret": secret, "created": created},
        nav=NAV,
    )


@admin_required
@require_POST
def server_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = keys.server_key_revoke(actor=staff_actor(request), reference=str(key_id))
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        messages.success(request, f"Server key “{key.name}” revoked; it no longer works.")
    return redirect("redemption:server_keys")
