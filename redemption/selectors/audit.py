"""Reads of the audit log."""

from django.db.models import QuerySet

from redemption.models import (
    AuditEvent,
)


def audit_events() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.order_by("-at", "-id")
