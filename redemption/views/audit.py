"""The audit log, filterable, newest first, paged by key: never counted, never OFFSET."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from redemption import selectors
from redemption.filters import AuditFilter
from redemption.models import AuditEvent
from redemption.tables import AuditTable
from redemption.views._common import code_reader, newest_first, page, viewer_required

PER_PAGE = 50


@viewer_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """The log, filterable. A Viewer's filter by a live code is moved to its id, so neither
    the form nor a paging link shows the code back."""
    audit_filter = AuditFilter(request.GET, queryset=selectors.audit_events())
    qs = audit_filter.qs if audit_filter.is_valid() else AuditEvent.objects.none()
    reader = code_reader(request)
    typed = request.GET.get("scan_code", "")
    if reader.masks_live and typed:
        code = selectors.code_for_scan_code(typed)
        if code is not None:
            params = request.GET.copy()
            del params["scan_code"]
            params["code"] = str(code.pk)
            return redirect(f"{request.path}?{params.urlencode()}")
    keyset = newest_first(request, qs, kind="audit", time_field="at", per_page=PER_PAGE)
    if keyset is None:
        return redirect("redemption:audit_log")
    if reader.masks_live:
        # An event keeps the scan code, not the code's state now: look the page's codes up.
        reader = reader.with_revealed(
            selectors.codes_shown_in_full(e.scan_code for e in keyset.rows)
        )
    return page(
        request,
        "redemption/audit_log.html",
        {"table": AuditTable(keyset.rows, reader=reader), "filter": audit_filter, "keyset": keyset},
        nav="audit",
    )
