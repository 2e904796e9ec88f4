"""The audit log, filterable, newest first, without counting the whole table."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_tables2 import RequestConfig
from django_tables2.paginators import LazyPaginator

from redemption import selectors
from redemption.filters import AuditFilter
from redemption.models import AuditEvent
from redemption.tables import AuditTable
from redemption.views._common import code_reader, page, viewer_required


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
    table = AuditTable(qs, reader=reader)
    RequestConfig(request, paginate={"per_page": 50, "paginator_class": LazyPaginator}).configure(
        table
    )
    if reader.masks_live:
        # An event keeps the scan code, not the code's state now: look the page's codes up.
        shown = selectors.codes_shown_in_full(r.record.scan_code for r in table.page.object_list)
        table.reader = reader.with_revealed(shown)
    return page(
        request, "redemption/audit_log.html", {"table": table, "filter": audit_filter}, nav="audit"
    )
