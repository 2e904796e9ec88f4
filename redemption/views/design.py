"""Design › Marketplace › Redemption Codes: inventories, code types and bulk work on them."""

from datetime import UTC
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from redemption import exceptions as exc
from redemption import rules, selectors, services
from redemption.csv_out import csv_download
from redemption.filters import CodeFilter, CodeTypeFilter, SharedRedemptionFilter
from redemption.forms import (
    PROTECTED_STATES,
    AddCodeForm,
    BulkCodesForm,
    CodeTypeForm,
    GenerateForm,
    ImportForm,
    ReasonForm,
    ResetCodesForm,
)
from redemption.ids import uuid_or_none
from redemption.models import STATE_ORDER, CodeType, SharedRedemption
from redemption.services import bulk
from redemption.tables import (
    attempt_list,
    batch_rows,
    code_rows,
    inventory_rows,
    shared_redemption_rows,
)
from redemption.uploads import CappedUploadHandler
from redemption.views._common import (
    STALE_PAGE,
    code_reader,
    ops_required,
    page,
    report_error,
    staff_actor,
    viewer_required,
)

NAV = "design"
PER_PAGE = 50


def _code_type_or_404(name: str) -> CodeType:
    try:
        return selectors.code_type_get(name)
    except exc.CodeTypeNotFoundError:
        raise Http404("No code type has that name.") from None


def _type_url(ct: CodeType | str) -> str:
    return reverse("redemption:code_type_detail", args=[str(ct)])


def _job_url(job: Any) -> str:
    return reverse("redemption:job_detail", args=[job.pk])


# The session remembers which code type's webhook secret the next page shows in full, once:
# after it was made (create, first webhook URL, rotation) or revealed. The secret itself is
# never put in the session.
SECRET_ONCE = "webhook_secret_shown_once"  # noqa: S105 - a session key, not a secret
SECRET_HINT_LENGTH = 10  # "whsec_" and 4 characters: enough to tell secrets apart


def _show_secret_once(request: HttpRequest, ct: CodeType) -> None:
    request.session[SECRET_ONCE] = ct.pk


def _secret_context(request: HttpRequest, ct: CodeType) -> dict[str, Any]:
    """What the webhook secret card needs; the full secret only on the one page it is due."""
    shown = request.session.get(SECRET_ONCE) == ct.pk and bool(ct.webhook_secret)
    if shown:
        del request.session[SECRET_ONCE]
    previous = ct.previous_secrets(timezone.now())
    return {
        "revealed_secret": ct.webhook_secret if shown else None,
        "secret_hint": ct.webhook_secret[:SECRET_HINT_LENGTH] + "•" * 8,
        "previous_secret_until": ct.previous_secret_valid_until if previous else None,
        "grace_hours": settings.WEBHOOK_SECRET_GRACE_HOURS,
    }


@viewer_required
def inventory(request: HttpRequest) -> HttpResponse:
    """Code types a page at a time (search, filters), each with use type, per-state counts,
    total and status; the tiles add up every code type."""
    type_filter = CodeTypeFilter(request.GET or None, queryset=CodeType.objects.none())
    per_page = rules.portal_per_page(request.GET.get("per_page"), PER_PAGE)
    kwargs = type_filter.selector_kwargs() if type_filter.is_valid() else {"search": None}
    if not type_filter.is_bound or type_filter.is_valid():
        try:
            found = selectors.code_types_page(
                **kwargs,
                cursor=request.GET.get("after") or None,
                before=request.GET.get("before") or None,
                limit=per_page,
                with_totals=True,
            )
        except exc.InvalidParameterError:
            messages.error(request, STALE_PAGE)
            found = selectors.code_types_page(**kwargs, limit=per_page, with_totals=True)
    else:
        found = selectors.CodeTypePage(
            rows=[], next_cursor=None, totals=selectors.totals_by_state()
        )
    totals = found.totals or selectors.empty_counts()
    first = found.previous_cursor is None
    keyset = selectors.KeysetPage(
        rows=found.rows, after=found.next_cursor, before=found.previous_cursor, is_first=first
    )
    filtered = type_filter.is_bound and any(request.GET.get(name) for name in type_filter.filters)
    return page(
        request,
        "redemption/inventory.html",
        {
            "states": STATE_ORDER,
            "type_rows": inventory_rows(found.rows),
            "filter": type_filter,
            "keyset": keyset,
            "filtered": filtered,
            # Only asked when the page is empty: is that the filters, or a new install?
            "any_type": bool(found.rows) or CodeType.objects.exists(),
            "totals": totals,
            "grand_total": sum(totals.values()),
        },
        nav=NAV,
    )


@viewer_required
def code_type_detail(request: HttpRequest, name: str) -> HttpResponse:
    """A type's settings, counts, codes (keyset pages), batches and failed attempts."""
    ct = _code_type_or_404(name)
    reader = code_reader(request)
    counts = selectors.state_counts(ct)
    after, before = request.GET.get("after"), request.GET.get("before")
    context: dict[str, Any] = {
        **_secret_context(request, ct),
        "ct": ct,
        "counts": counts,
        "total": sum(counts.values()),
        "failed_attempts": attempt_list(
            selectors.recent_failed_attempts(ct), show_code=not ct.is_shared, reader=reader
        ),
    }
    if ct.is_shared:
        shared_filter = SharedRedemptionFilter(
            request.GET, queryset=selectors.of_type(SharedRedemption, ct)
        )
        keyset = _filtered_page(shared_filter, after=after, before=before)
        context["filter"] = shared_filter
        context["redemption_rows"] = shared_redemption_rows(keyset.rows)
    else:
        code_filter = CodeFilter(
            request.GET,
            queryset=selectors.codes_filtered(ct),
            prefix_max=rules.MASK_KEEP if reader.masks_live else None,
        )
        keyset = _filtered_page(code_filter, after=after, before=before)
        context["filter"] = code_filter
        context["code_rows"] = code_rows(keyset.rows, reader=reader)
        context["batch_rows"] = batch_rows(selectors.batches_of_type(ct))
    context["keyset"] = keyset
    context["export_query"] = _export_query(request)
    return page(request, "redemption/code_type_detail.html", context, nav=NAV)


def _filtered_page(
    found: CodeFilter | SharedRedemptionFilter, *, after: str | None, before: str | None
) -> selectors.KeysetPage:
    """The keyset page of what a valid filter selects; an empty page while it is invalid."""
    if not found.is_valid():
        return selectors.KeysetPage(rows=[], after=None, before=None, is_first=True)
    return selectors.keyset_page(found.qs, after=after, before=before, per_page=PER_PAGE)


def _export_query(request: HttpRequest) -> str:
    params = {k: request.GET[k] for k in ("state", "batch") if request.GET.get(k)}
    if not params:
        return ""
    return "?" + urlencode(params)


def _code_type_kwargs(form: CodeTypeForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "description": data.get("description") or "",
        "valid_start": data.get("valid_start"),
        "valid_end": data.get("valid_end"),
        "custom_code_info": data.get("custom_code_info") or {},
        "is_disabled": bool(data.get("is_disabled")),
        "fulfillment": form.fulfillment(),
    }


@ops_required
def code_type_create(request: HttpRequest) -> HttpResponse:
    form = CodeTypeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        shared = data["use_type"] == "MULTI"
        try:
            ct = services.code_type_create(
                actor=staff_actor(request),
                name=data["name"],
                use_type=data["use_type"],
                scan_code=data.get("scan_code") or None if shared else None,
                max_redemptions=data.get("max_redemptions") if shared else None,
                **_code_type_kwargs(form),
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Code type “{ct.name}” created.")
            if ct.webhook_secret:
                _show_secret_once(request, ct)
            return redirect(_type_url(ct))
    return page(
        request, "redemption/code_type_form.html", {"form": form, "creating": True}, nav=NAV
    )


def _initial_from(ct: CodeType) -> dict[str, Any]:
    return {
        "name": ct.name,
        "use_type": ct.use_type,
        "description": ct.description,
        "scan_code": ct.scan_code or "",
        "valid_start": ct.valid_start,
        "valid_end": ct.valid_end,
        "max_redemptions": ct.max_redemptions,
        "custom_code_info": ct.custom_code_info,
        "is_disabled": ct.is_disabled,
        "fulfillment_url": ct.fulfillment_url,
        "fulfillment_async": ct.fulfillment_async,
        "fulfillment_max_retries": ct.fulfillment_max_retries,
        "fulfillment_timeout_seconds": ct.fulfillment_timeout_seconds,
        "version": ct.version,
    }


@ops_required
def code_type_edit(request: HttpRequest, name: str) -> HttpResponse:
    ct = _code_type_or_404(name)
    form = CodeTypeForm(request.POST or None, initial=_initial_from(ct), editing=True)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        kwargs = _code_type_kwargs(form)
        if ct.is_shared:
            kwargs["scan_code"] = data.get("scan_code")
            kwargs["max_redemptions"] = data.get("max_redemptions")
        had_secret = bool(ct.webhook_secret)
        try:
            ct = services.code_type_update(
                actor=staff_actor(request),
                name=ct.name,
                expected_version=data.get("version"),
                **kwargs,
            )
        except exc.VersionMismatchError:
            messages.error(
                request,
                "Someone else changed this code type while you were editing. "
                "Your changes were not saved; the form now shows the current settings.",
            )
            return redirect("redemption:code_type_edit", name=ct.name)
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Code type “{ct.name}” saved.")
            if ct.webhook_secret and not had_secret:
                _show_secret_once(request, ct)
            return redirect(_type_url(ct))
    return page(
        request,
        "redemption/code_type_form.html",
        {**_secret_context(request, ct), "form": form, "creating": False, "ct": ct},
        nav=NAV,
    )


@ops_required
@require_POST
def code_type_rotate_secret(request: HttpRequest, name: str) -> HttpResponse:
    ct = _code_type_or_404(name)
    try:
        ct = services.code_type_rotate_secret(actor=staff_actor(request), name=ct.name)
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        _show_secret_once(request, ct)
        grace = ""
        until = ct.previous_secret_valid_until
        if until:
            grace = (
                f" The old one also signs calls until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC."
            )
        messages.success(
            request,
            "A new webhook signing secret is in force; update your fulfilment backend." + grace,
        )
    return redirect("redemption:code_type_edit", name=ct.name)


@ops_required
@require_POST
def code_type_reveal_secret(request: HttpRequest, name: str) -> HttpResponse:
    """Show the webhook secret in full on the next page, once; the reveal is audited."""
    ct = _code_type_or_404(name)
    try:
        services.code_type_secret_reveal(actor=staff_actor(request), name=ct.name)
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        _show_secret_once(request, ct)
    if request.POST.get("back") == "detail":
        return redirect(_type_url(ct))
    return redirect("redemption:code_type_edit", name=ct.name)


def _archive(request: HttpRequest, name: str, *, archived: bool) -> HttpResponse:
    ct = _code_type_or_404(name)
    try:
        services.code_type_archive(actor=staff_actor(request), name=ct.name, archived=archived)
    except exc.RedemptionError as error:
        report_error(request, error)
    else:
        if archived:
            messages.success(
                request,
                f"“{ct.name}” is archived: hidden from the inventory and nothing of it can be "
                "redeemed; its codes are kept.",
            )
        else:
            messages.success(request, f"“{ct.name}” is back in use.")
    return redirect(_type_url(ct))


@ops_required
@require_POST
def code_type_archive(request: HttpRequest, name: str) -> HttpResponse:
    return _archive(request, name, archived=True)


@ops_required
@require_POST
def code_type_unarchive(request: HttpRequest, name: str) -> HttpResponse:
    return _archive(request, name, archived=False)


@ops_required
def code_type_delete(request: HttpRequest, name: str) -> HttpResponse:
    """Confirm, then delete a code type that has no codes and no shared redemptions."""
    ct = _code_type_or_404(name)
    counts = selectors.state_counts(ct)
    total = sum(counts.values())
    if request.method == "POST":
        try:
            services.code_type_delete(actor=staff_actor(request), name=ct.name)
        except exc.RedemptionError as error:
            report_error(request, error)
            return redirect(_type_url(ct))
        messages.success(request, f"Code type “{ct.name}” deleted.")
        return redirect("redemption:inventory")
    return page(
        request,
        "redemption/code_type_delete.html",
        {"ct": ct, "counts": counts, "total": total},
        nav=NAV,
    )


@ops_required
def code_generate(request: HttpRequest, name: str) -> HttpResponse:
    """Start a generation job and land on its page."""
    ct = _code_type_or_404(name)
    form = GenerateForm(request.POST or None)
    if ct.is_shared:
        messages.error(request, "Shared code types have one public code; nothing to generate.")
        return redirect(_type_url(ct))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = bulk.job_generate_start(
                actor=staff_actor(request),
                code_type_name=ct.name,
                quantity=data["quantity"],
                state=data["state"],
                custom_code_info=data.get("custom_code_info") or None,
                prefix=data.get("code_prefix") or None,
                algorithm=data.get("algorithm") or None,
                algorithm_details=form.algorithm_details() or None,
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Generating {data['quantity']:,} codes for “{ct.name}”.")
            return redirect(_job_url(job))
    return page(request, "redemption/code_generate.html", {"ct": ct, "form": form}, nav=NAV)


@ops_required
@csrf_exempt  # CSRF is checked below, once the upload handler is in place
def code_import(request: HttpRequest, name: str) -> HttpResponse:
    """Upload a CSV (at most the API's import limit), start an import job, land on its page."""
    cap = CappedUploadHandler(request, limit=settings.IMPORT_MAX_BODY_BYTES)
    request.upload_handlers.insert(0, cap)
    return _code_import(request, name, cap)


@csrf_protect
def _code_import(request: HttpRequest, name: str, cap: CappedUploadHandler) -> HttpResponse:
    ct = _code_type_or_404(name)
    posted = request.method == "POST"
    form = ImportForm(
        request.POST if posted else None,
        request.FILES if posted else None,
        max_bytes=cap.limit,
        too_large=posted and cap.exceeded,
    )
    if posted and form.is_valid():
        try:
            job = bulk.job_import_start(
                actor=staff_actor(request),
                code_type_name=ct.name,
                upload=form.cleaned_data["file"],
                preserve_state=form.cleaned_data["preserve_state"],
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Importing codes into “{ct.name}”.")
            return redirect(_job_url(job))
    return page(request, "redemption/code_import.html", {"ct": ct, "form": form}, nav=NAV)


@ops_required
def code_add(request: HttpRequest, name: str) -> HttpResponse:
    ct = _code_type_or_404(name)
    form = AddCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            code = services.code_add(
                actor=staff_actor(request),
                code_type_name=ct.name,
                scan_code=data["scan_code"],
                state=data["state"],
                custom_code_info=data.get("custom_code_info") or None,
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Code {code.scan_code} added.")
            return redirect("redemption:code_detail", canonical=code.canonical)
    return page(request, "redemption/code_add.html", {"ct": ct, "form": form}, nav=NAV)


@ops_required
def code_export(request: HttpRequest, name: str) -> HttpResponseBase:
    """Stream a type's codes as CSV, optionally only one state and/or one batch."""
    ct = _code_type_or_404(name)
    state = request.GET.get("state") or None
    if state is not None and state not in STATE_ORDER:
        state = None
    batch_id = request.GET.get("batch") or None
    if batch_id is not None and uuid_or_none(batch_id) is None:
        batch_id = None
    try:
        rows = bulk.export_rows(code_type=ct, state=state, batch_id=batch_id)
    except exc.RedemptionError as error:
        report_error(request, error)
        return redirect(_type_url(ct))
    suffix = "".join(f"-{p}" for p in (state, batch_id and batch_id[:8]) if p)
    return csv_download(rows, f"{ct.name}{suffix}.csv")


@ops_required
def batch_invalidate(request: HttpRequest, name: str, batch_id: Any) -> HttpResponse:
    """Confirm and invalidate every open code of one batch, with a reason."""
    ct = _code_type_or_404(name)
    try:
        batch = selectors.batch_get(code_type=ct, batch_id=batch_id)
    except exc.RedemptionError:
        raise Http404("No such batch for this code type.") from None
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            count = services.batch_invalidate(
                actor=staff_actor(request), batch_id=batch.pk, reason=form.cleaned_data["reason"]
            )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            messages.success(request, f"Invalidated {count:,} codes of batch {batch.pk}.")
            return redirect(_type_url(ct))
    return page(
        request,
        "redemption/batch_invalidate.html",
        {
            "ct": ct,
            "batch": batch,
            "form": form,
            "open_count": selectors.batch_open_count(batch),
        },
        nav=NAV,
    )


def _bulk_confirm(request: HttpRequest, name: str, *, reset: bool) -> HttpResponse:
    """Confirm, then start, a delete-all or reset-all (counts, opted-in states, typed name)."""
    ct = _code_type_or_404(name)
    form_class = ResetCodesForm if reset else BulkCodesForm
    form = form_class(request.POST or None, code_type_name=ct.name)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if reset:
                job = bulk.job_reset_codes_start(
                    actor=staff_actor(request),
                    code_type_name=ct.name,
                    states=data["states"],
                    to_state=data["to_state"],
                    confirm_name=data["confirm_name"],
                )
            else:
                job = bulk.job_delete_codes_start(
                    actor=staff_actor(request),
                    code_type_name=ct.name,
                    states=data["states"],
                    confirm_name=data["confirm_name"],
                )
        except exc.RedemptionError as error:
            report_error(request, error, form)
        else:
            verb = "Resetting" if reset else "Deleting"
            messages.success(request, f"{verb} codes of “{ct.name}” in the background.")
            return redirect(_job_url(job))
    preview = bulk.delete_reset_preview(code_type_name=ct.name)
    counts = [(s, preview.get(s, 0), s in PROTECTED_STATES) for s in STATE_ORDER]
    return page(
        request,
        "redemption/codes_bulk_confirm.html",
        {
            "ct": ct,
            "form": form,
            "reset": reset,
            "counts": counts,
            "total": sum(preview.values()),
            "protected_states": PROTECTED_STATES,
        },
        nav=NAV,
    )


@ops_required
def codes_delete(request: HttpRequest, name: str) -> HttpResponse:
    return _bulk_confirm(request, name, reset=False)


@ops_required
def codes_reset(request: HttpRequest, name: str) -> HttpResponse:
    return _bulk_confirm(request, name, reset=True)
