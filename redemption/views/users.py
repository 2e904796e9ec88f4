"""User Monitoring › Redemption Codes: what one profile redeemed and attempted."""

from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from redemption import exceptions as exc
from redemption import rules, selectors, services
from redemption.forms import ProfileForm
from redemption.selectors import KeysetPage
from redemption.tables import ProfileRecordTable, attempt_list, history_rows
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


def _profile_url(profile_id: str, code_type: str | None = None) -> str:
    query = {"profile": profile_id, **({"code_type": code_type} if code_type else {})}
    return reverse("redemption:user_monitoring") + "?" + urlencode(query)


@viewer_required
def user_monitoring(request: HttpRequest) -> HttpResponse:
    """Find a profile by id or by the start of its id or name; show its codes (any state it
    reached, of every type or one) and its failed/in-progress attempts."""
    form = ProfileForm(request.GET or None, code_type_choices=selectors.code_types_for_choices())
    context: dict[str, object] = {"form": form}
    if not (form.is_bound and form.is_valid()):
        return page(request, "redemption/user_monitoring.html", context, nav=NAV)
    text = form.cleaned_data["profile"]
    type_name = form.cleaned_data["code_type"] or None
    counts = selectors.profile_record_counts(text)
    if counts[0] == 0:
        return _profile_search(request, context, text, type_name)
    return _profile_page(request, context, text, type_name, counts)


def _profile_search(
    request: HttpRequest, context: dict[str, object], text: str, type_name: str | None
) -> HttpResponse:
    """No profile has that id: list the profiles whose id or name starts with it (one opens
    at once)."""
    matches, more = selectors.profiles_matching(text)
    if len(matches) == 1 and matches[0].profile_id != text:
        return redirect(_profile_url(matches[0].profile_id, type_name))
    context.update(search=text, matches=matches, more_matches=more)
    return page(request, "redemption/user_monitoring.html", context, nav=NAV)


def _profile_page(
    request: HttpRequest,
    context: dict[str, object],
    profile_id: str,
    type_name: str | None,
    counts: tuple[int, int],
) -> HttpResponse:
    """One profile's records (of one type, when chosen), a keyset page at a time."""
    record_count, redeemed_count = counts
    try:
        ct_id = selectors.code_type_get(type_name).pk if type_name else None
    except exc.CodeTypeNotFoundError:  # deleted since the form listed it
        messages.error(request, "That code type no longer exists; here are every type's codes.")
        return redirect(_profile_url(profile_id))
    after = request.GET.get("after") or None
    try:
        records = selectors.profile_records_page(
            profile_id,
            code_type_id=ct_id,
            redeemed_only=False,
            cursor=after,
            limit=rules.portal_per_page(request.GET.get("per_page"), PER_PAGE),
        )
    except exc.InvalidParameterError:
        messages.error(request, STALE_PAGE)
        return redirect(_profile_url(profile_id, type_name))
    if ct_id is not None:
        record_count, redeemed_count = selectors.profile_record_counts(
            profile_id, code_type_id=ct_id
        )
    reader = code_reader(request)
    context.update(
        profile_id=profile_id,
        code_type=type_name,
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
        attempts=attempt_list(
            selectors.profile_open_attempts(profile_id, code_type_id=ct_id), reader=reader
        ),
    )
    return page(request, "redemption/user_monitoring.html", context, nav=NAV)


@viewer_required
def shared_redemption_detail(request: HttpRequest, redemption_id: UUID) -> HttpResponse:
    """One profile's redemption of a shared code: every field, its attempts and history."""
    sr = selectors.shared_redemption_get(redemption_id)
    if sr is None:
        raise Http404("No shared redemption has that id; it may have been deleted.")
    context = {
        "sr": sr,
        "ct": sr.code_type,
        "attempts": attempt_list(selectors.shared_redemption_attempts(sr), show_code=False),
        "history": history_rows(selectors.shared_redemption_history(sr)),
    }
    return page(request, "redemption/shared_redemption_detail.html", context, nav=NAV)


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
