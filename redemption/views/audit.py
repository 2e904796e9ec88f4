"""The audit log, filterable, newest first, without counting the whole table."""

from django.http import HttpRequest, HttpResponse
from django_tables2 import RequestConfig
from django_tables2.paginators import LazyPaginator

from redemption import selectors
from redemption.filters import AuditFilter
from redemption.models import AuditEvent
from redemption.tables import AuditTable
from redemption.views._common import page, viewer_required


@viewer_required
def audit_log(request: HttpRequest) -> HttpResponse:
    audit_filter = AuditFilter(request.GET, queryset=selectors.audit_events())
    qs = audit_filter.qs if audit_filter.is_valid() else AuditEvent.objects.none()
    table = AuditTable(qs)
    RequestConfig(request, paginate={"per_page": 50, "paginator_class": LazyPaginator}).configure(
        table
    )
    return page(
        request, "redemption/audit_log.html", {"table": table, "filter": audit_filter}, nav="audit"
    )
