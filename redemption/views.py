"""Portal pages (thin: read through selectors, write through services)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from redemption import selectors


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return redirect("redemption:inventory")


@login_required
def inventory(request: HttpRequest) -> HttpResponse:
    """Design › Marketplace › Redemption Codes: one row per code type with per-state counts."""
    return render(
        request,
        "redemption/inventory.html",
        {"rows": selectors.inventory_summary(), "states": selectors.empty_counts().keys()},
    )
