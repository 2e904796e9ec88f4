"""The audit log, filterable, newest first, paged by key: never counted, never OFFSET."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from redemption import selectors
from redemption.filters import AuditFilter
from redemption.models import AuditEvent
from redemption.tables import AuditTable
from redemption.views._common import newest_first, page, viewer_required

PER_PAGE = 50


@viewer_required
def audit_log(request: HttpRequest) -> HttpResponse:
    audit_filter = AuditFilter(request.GET, queryset=selectors.audit_events())
    qs = audit_filter.qs if audit_filter.is_valid() else AuditEvent.objects.none()
    keyset = newest_first(request, qs, kind="audit", time_field="at", per_page=PER_PAGE)
    if keyset is None:
        return redirect("redemption:audit_log")
    return page(
        request,
        "redemption/audit_log.html",
        {"table": AuditTable(keyset.rows), "filter": audit_filter, "keyset": keyset},
        nav="audit",
    )
