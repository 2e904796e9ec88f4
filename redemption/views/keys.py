"""Server keys (superusers): create — the secret is shown once — and revoke."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from redemption import exceptions as exc
from redemption import portal_selectors
from redemption.forms import ServerKeyForm
from redemption.tables import ServerKeyTable
from redemption.views._common import admin_required, page, report_error, staff_actor

NAV = "keys"
FRESH_KEY_SLOT = "redemption:fresh-server-key"


@admin_required
def server_keys(request: HttpRequest) -> HttpResponse:
    """List keys; a valid POST creates one, whose secret the next page shows this once only."""
    from redemption.services import keys

    form = ServerKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = keys.server_key_create(
                actor=staff_actor(request), name=form.cleaned_data["name"]
            )
        except exc.RedemptionError as error:
            report_error(request, error, form, {"name": "name"})
        else:
            messages.success(request, f"Server key “{key.name}” created. Copy its secret now.")
            # Handed to the next page through the session and removed as it is shown, so a
            # reload neither shows it again nor creates a second key.
            request.session[FRESH_KEY_SLOT] = {"name": key.name, "secret": secret}
            return redirect("redemption:server_keys")
    fresh = request.session.pop(FRESH_KEY_SLOT, None) if request.method == "GET" else None
    secret = fresh["secret"] if fresh else None
    created = {"name": fresh["name"]} if fresh else None
    table = ServerKeyTable(portal_selectors.server_keys())
    response = page(
        request,
        "redemption/server_keys.html",
        {"table": table, "form": form, "secret": secret, "created": created},
        nav=NAV,
    )
    response["Cache-Control"] = "no-store"
    return response


@admin_required
@require_POST
def server_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    from redemption.services import keys

    try:
        key = keys.server_key_revoke(actor=staff_actor(request), reference=str(key_id))
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        messages.success(request, f"Server key “{key.name}” revoked; it no longer works.")
    return redirect("redemption:server_keys")
