"""Global Monitoring › Redemption Codes: look up one code, see everything about it, act on it."""

from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from redemption import exceptions as exc
from redemption import permissions, rules, selectors, services
from redemption.forms import (
    ActivateForm,
    CodeResetForm,
    CustomInfoForm,
    LookupForm,
    OptionalReasonForm,
    TestCodeForm,
)
from redemption.masking import code_detail_url
from redemption.models import Code, CodeType, State
from redemption.tables import attempt_list, history_rows
from redemption.transitions import can, redeem_refusal
from redemption.views._common import (
    code_reader,
    page,
    report_error,
    staff_actor,
    support_required,
    viewer_required,
)

NAV = "global"


def _code_or_404(canonical: str) -> Code:
    try:
        return selectors.code_lookup(canonical)
    except (exc.CodeNotFoundError, exc.InvalidScanCodeError):
        raise Http404("No redemption code matches that scan code.") from None


def _detail(code: Code) -> HttpResponse:
    return redirect("redemption:code_detail", canonical=code.canonical)


def _detail_for(request: HttpRequest, code: Code) -> HttpResponse:
    """The code's page at the address this user may see (by id for Viewers)."""
    return redirect(code_reader(request).code_url(code))


@viewer_required
def lookup(request: HttpRequest) -> HttpResponse:
    """Find one code by any spelling; also offers "Get test code" (Support and up)."""
    form = LookupForm(request.GET or None)
    if form.is_bound and form.is_valid():
        try:
            found = selectors.code_or_shared_type_lookup(form.cleaned_data["q"])
        except exc.RedemptionError as error:
            form.add_error("q", error.message)
        else:
            if isinstance(found, CodeType):
                messages.info(
                    request,
                    f"{found.scan_code} is the shared code of “{found.name}”; "
                    "each profile's redemption of it is listed here.",
                )
                return redirect("redemption:code_type_detail", name=found.name)
            return _detail_for(request, found)
    # Built only for the page itself: a found code redirects, and the choices are every type.
    test_form = None
    if permissions.has_role(request.user, permissions.SUPPORT):
        test_form = TestCodeForm(
            code_type_choices=selectors.code_types_for_choices(), prefix="test"
        )
    return page(
        request,
        "redemption/lookup.html",
        {"form": form, "test_form": test_form},
        nav=NAV,
        status=404 if form.is_bound and form.errors else 200,
    )


@support_required
def test_code(request: HttpRequest) -> HttpResponse:
    """Open the first code of a chosen type and state (for trying a redeem by hand).

    Not for Viewers: it would hand them a live code.
    """
    form = TestCodeForm(
        request.GET or None,
        code_type_choices=selectors.code_types_for_choices(),
        prefix="test",
    )
    if not form.is_valid():
        messages.error(request, "Choose a code type and a state.")
        return redirect("redemption:lookup")
    ct = selectors.code_type_get(form.cleaned_data["code_type"])
    state = form.cleaned_data["state"]
    if ct.is_shared:
        return _shared_test_code(request, ct)
    code = selectors.first_code(code_type=ct, state=state)
    if code is None or not rules.is_canonical_scan_code(code.canonical):
        messages.warning(request, f"“{ct.name}” has no {state} code.")
        return redirect(reverse("redemption:lookup"))
    return _detail(code)


def _shared_test_code(request: HttpRequest, ct: CodeType) -> HttpResponse:
    """A shared type has one scan code and no per-code state: answer it, and whether a
    redeem of it would pass the type's gates now (disabled, window, cap)."""
    refusal = redeem_refusal(ct, now=timezone.now(), count_cap=True)
    said = (
        f"Test code of the shared type “{ct.name}”: {ct.scan_code} (a shared code has no "
        "state of its own, so the state chosen does not apply). "
    )
    if refusal is None:
        messages.success(request, said + "It is redeemable now.")
    else:
        messages.warning(
            request, said + f"It is not redeemable now: {refusal.message} ({refusal.code})"
        )
    return redirect("redemption:code_type_detail", name=ct.name)


@viewer_required
def code_detail(request: HttpRequest, canonical: str) -> HttpResponse:
    """Every field of one code, its custom info as JSON, attempts and history.

    A Viewer, who knows the code already, is sent to its page by id: no page they are shown
    carries a live code in its address.
    """
    code = _code_or_404(canonical)
    if code_reader(request).masks_live:
        return redirect(code_detail_url(code))
    return _code_page(request, code)


@viewer_required
def code_detail_by_id(request: HttpRequest, code_id: UUID) -> HttpResponse:
    """The same page, addressed by the code's id."""
    code = selectors.code_by_id(code_id)
    if code is None:
        raise Http404("No redemption code has that id.")
    return _code_page(request, code)


def _code_page(request: HttpRequest, code: Code) -> HttpResponse:
    state = code.state
    context = {
        "code": code,
        "ct": code.code_type,
        "attempts": attempt_list(selectors.code_attempts(code), show_code=False),
        "history": history_rows(selectors.code_history(code)),
        "can_activate": can(state, State.AVAILABLE) and state == State.INACTIVE,
        "can_invalidate": can(state, State.INVALIDATED),
        # Re-issuing a redeemed code's value needs Ops (the service refuses Support too).
        "can_reset": state != State.REDEEMED or permissions.has_role(request.user, permissions.OPS),
        "activate_form": ActivateForm(),
        "invalidate_form": OptionalReasonForm(),
        "reset_form": CodeResetForm(initial={"state": State.INACTIVE}),
    }
    return page(request, "redemption/code_detail.html", context, nav=NAV)


@support_required
@require_POST
def code_activate(request: HttpRequest, canonical: str) -> HttpResponse:
    """Inactive → Available, replacing the custom info when new JSON was typed."""
    code = _code_or_404(canonical)
    form = ActivateForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        messages.error(request, f"Not activated: {errors}")
        return _detail(code)
    info = form.cleaned_data.get("custom_code_info")
    try:
        services.code_activate(
            actor=staff_actor(request), scan_code=code.canonical, custom_code_info=info
        )
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        replaced = " with new custom info" if info is not None else ""
        messages.success(request, f"{code.scan_code} is now Available{replaced}.")
    return _detail(code)


@support_required
@require_POST
def code_invalidate(request: HttpRequest, canonical: str) -> HttpResponse:
    code = _code_or_404(canonical)
    form = OptionalReasonForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, f"The reason may be at most {rules.INVALIDATION_REASON_MAX:,} characters."
        )
        return _detail(code)
    try:
        services.code_invalidate(
            actor=staff_actor(request),
            scan_code=code.canonical,
            reason=form.cleaned_data.get("reason") or None,
        )
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        messages.success(request, f"{code.scan_code} has been invalidated.")
    return _detail(code)


@support_required
@require_POST
def code_reset(request: HttpRequest, canonical: str) -> HttpResponse:
    code = _code_or_404(canonical)
    form = CodeResetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Inactive or Available.")
        return _detail(code)
    try:
        services.code_reset(
            actor=staff_actor(request), scan_code=code.canonical, state=form.cleaned_data["state"]
        )
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        messages.success(
            request,
            f"{code.scan_code} was reset to {form.cleaned_data['state']}; "
            "its redemption and attempts were cleared.",
        )
    return _detail(code)


@support_required
def code_custom_info(request: HttpRequest, canonical: str) -> HttpResponse:
    """Edit a code's custom info, refusing if someone else changed the code meanwhile."""
    code = _code_or_404(canonical)
    form = CustomInfoForm(
        request.POST or None,
        initial={"custom_code_info": code.custom_code_info, "version": code.version},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.code_update_custom_info(
                actor=staff_actor(request),
                scan_code=code.canonical,
                version=form.cleaned_data["version"],
                custom_code_info=form.cleaned_data["custom_code_info"],
            )
        except exc.VersionMismatchError:
            messages.error(
                request,
                "Someone else changed this code while you were editing; your edit was not "
                "saved. The form now shows the current custom info.",
            )
            return redirect("redemption:code_custom_info", canonical=code.canonical)
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Custom info of {code.scan_code} saved.")
            return _detail(code)
    return page(
        request,
        "redemption/code_custom_info.html",
        {"code": code, "ct": code.code_type, "form": form},
        nav=NAV,
    )
