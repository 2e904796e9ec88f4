"""User Monitoring › Redemption Codes: what one profile redeemed and attempted."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from redemption import exceptions as exc
from redemption import rules, selectors, services
from redemption.forms import ProfileForm
from redemption.selectors import KeysetPage
from redemption.tables import AttemptTable, ProfileRecordTable
from redemption.views._common import (
    STALE_PAGE,
    code_reader,
    ops_required,
    page,
    report_error,
    staff_actor,
    viewer_required,
)

NAV = "user"
PER_PAGE = rules.PAGE_LIMIT_DEFAULT


def _profile_url(profile_id: str) -> str:
    return reverse("redemption:user_monitoring") + "?" + urlencode({"profile": profile_id})


@viewer_required
def user_monitoring(request: HttpRequest) -> HttpResponse:
    """Enter a profile id: its codes (any state it reached) and its failed/in-progress attempts."""
    form = ProfileForm(request.GET or None)
    context: dict[str, object] = {"form": form}
    if form.is_bound and form.is_valid():
        profile_id = form.cleaned_data["profile"]
        after = request.GET.get("after") or None
        try:
            records = selectors.profile_records_page(
                profile_id,
                redeemed_only=False,
                cursor=after,
                limit=rules.portal_per_page(request.GET.get("per_page"), PER_PAGE),
            )
        except exc.InvalidParameterError:
            messages.error(request, STALE_PAGE)
            return redirect(_profile_url(profile_id))
        record_count, redeemed_count = selectors.profile_record_counts(profile_id)
        reader = code_reader(request)
        context.update(
            profile_id=profile_id,
            profile_name=selectors.profile_name_of(records.records),
            records_table=ProfileRecordTable(records.records, reader=reader),
            keyset=KeysetPage(
                rows=records.records,
                after=records.next_cursor,
                before=None,
                is_first=after is None,
            ),
            redeemed_count=redeemed_count,
            record_count=record_count,
            attempts_table=AttemptTable(selectors.profile_open_attempts(profile_id), reader=reader),
        )
    return page(request, "redemption/user_monitoring.html", context, nav=NAV)


@ops_required
def shared_redemption_delete(request: HttpRequest) -> HttpResponse:
    """Confirm, then delete one profile's redemption of a shared code so it may redeem again."""
    source = request.POST if request.method == "POST" else request.GET
    code_type_name = source.get("code_type", "")
    profile_id = source.get("profile", "")
    if not code_type_name or not profile_id:
        messages.error(request, "Choose a profile and a shared code type.")
        return redirect("redemption:user_monitoring")
    if request.method == "POST" and source.get("confirm") == "yes":
        try:
            services.shared_redemption_delete(
                actor=staff_actor(request), code_type_name=code_type_name, profile_id=profile_id
            )
        except exc.RedemptionError as error:
            report_error(request, error)
        else:
            messages.success(
                request,
                f"Deleted {profile_id}'s redemption of “{code_type_name}”; "
                "that profile may redeem it again.",
            )
        return redirect(_profile_url(profile_id))
    return page(
        request,
        "redemption/shared_redemption_delete.html",
        {"code_type_name": code_type_name, "profile_id": profile_id},
        nav=NAV,
    )
