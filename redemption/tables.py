"""Tables of the staff portal: django-tables2 tables, and plain rows for the busiest lists.

The inventory, a code type's lists (codes, shared redemptions, batches) and fulfilment attempts
and history are drawn by plain template loops (`templates/redemption/_inventory_table.html`
and its kin) over the rows built here: django-tables2 spent about 0.1 ms per cell dispatching
and escaping (3 ms a row of the inventory), most of those pages' CPU, and staff pages share
the app server with redeems.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypedDict
from urllib.parse import urlencode

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from redemption import rules
from redemption.masking import FULL, CodeReader
from redemption.models import (
    STATE_ORDER,
    Attempt,
    AuditEvent,
    Batch,
    Code,
    Job,
    ServerKey,
    SharedRedemption,
    UseType,
)
from redemption.templatetags.portal import compact_json, num, pretty_json, state_badge, utc

TABLE_TEMPLATE = "redemption/_table.html"


# How the portal's tables show a time (in UTC, see `utc`).
TIME_FORMAT = "%Y-%m-%d %H:%M"


def profile_url(profile_id: str) -> str:
    return reverse("redemption:user_monitoring") + "?" + urlencode({"profile": profile_id})


def type_url(name: str) -> str:
    return reverse("redemption:code_type_detail", args=[name])


class UTCColumn(tables.Column):
    """A timestamp shown in UTC with an explicit label."""

    def render(self, value: Any) -> str:
        return utc(value, TIME_FORMAT)


class NumColumn(tables.Column):
    """A right-aligned whole number with thousands separators."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        super().__init__(*args, **kwargs)

    def render(self, value: Any) -> str:
        return num(value)


class StateColumn(tables.Column):
    """The record's state as the portal's badge (its value, e.g. InProgress: django-tables2
    would hand over the choice's label, "In Progress", and break the badge's class)."""

    def render(self, record: Code | SharedRedemption) -> str:
        return state_badge(record.state)


class JSONColumn(tables.Column):
    """Short one-line JSON (escaped by the template engine like any other text)."""

    def __init__(self, *args: Any, limit: int = 80, **kwargs: Any) -> None:
        kwargs.setdefault("attrs", {"td": {"class": "json-cell"}})
        kwargs.setdefault("orderable", False)
        self.limit = limit
        super().__init__(*args, **kwargs)

    def render(self, value: Any) -> str:
        return compact_json(value, self.limit)


class PrettyJSONColumn(tables.Column):
    """Indented JSON in a scrolling block (escaped like any other text); a dash when empty."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("attrs", {"td": {"class": "json-cell wide"}})
        kwargs.setdefault("orderable", False)
        kwargs.setdefault("empty_values", ())
        super().__init__(*args, **kwargs)

    def render(self, value: Any) -> str:
        if value in (None, {}, []):
            return mark_safe('<span class="muted">—</span>')
        return format_html('<pre class="json cell-json">{}</pre>', pretty_json(value))


class PortalTable(tables.Table):
    class Meta:
        template_name = TABLE_TEMPLATE
        attrs = {"class": "grid"}


class AuditTable(PortalTable):
    """The whole audit log."""

    at = UTCColumn(verbose_name="When")
    actor_label = tables.Column(verbose_name="Who", attrs={"td": {"class": "nowrap"}})
    action = tables.Column()
    code_type_name = tables.Column(verbose_name="Code type")
    scan_code = tables.Column(verbose_name="Scan code")
    profile_id = tables.Column(verbose_name="Profile")
    details = JSONColumn(
        attrs={"td": {"class": "json-cell wide"}}, verbose_name="Details", limit=300
    )

    class Meta(PortalTable.Meta):
        model = AuditEvent
        fields = ()
        orderable = False
        empty_text = "No audit events match these filters."

    def __init__(self, *args: Any, reader: CodeReader = FULL, **kwargs: Any) -> None:
        self.reader = reader
        super().__init__(*args, **kwargs)

    def render_actor_label(self, value: str, record: AuditEvent) -> str:
        return format_html('{} <span class="muted">({})</span>', value, record.actor_kind)

    def render_scan_code(self, value: str) -> str:
        return self.reader.text(value)

    def render_code_type_name(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', type_url(value), value)

    def render_profile_id(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', profile_url(value), value)


class JobTable(PortalTable):
    """Background jobs, newest first."""

    created_at = UTCColumn(verbose_name="Started")
    kind = tables.Column()
    code_type_name = tables.Column(verbose_name="Code type")
    status = tables.Column()
    progress = tables.Column(empty_values=(), orderable=False, verbose_name="Progress")
    error_count = NumColumn(verbose_name="Errors")
    created_by = tables.Column(verbose_name="By")
    finished_at = UTCColumn(verbose_name="Finished")

    class Meta(PortalTable.Meta):
        model = Job
        fields = ()
        orderable = False
        empty_text = "No jobs yet. Generating, importing, deleting or resetting codes starts one."

    def render_created_at(self, value: Any, record: Job) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("redemption:job_detail", args=[record.pk]),
            utc(value, TIME_FORMAT),
        )

    def render_kind(self, value: str, record: Job) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("redemption:job_detail", args=[record.pk]),
            record.get_kind_display(),
        )

    def render_code_type_name(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', type_url(value), value)

    def render_status(self, record: Job) -> str:
        return format_html('<span class="badge job-{}">{}</span>', record.status, record.status)

    def render_progress(self, record: Job) -> str:
        return format_html(
            '<progress max="100" value="{}" aria-label="Progress">{}%</progress> '
            '<span class="muted">{} / {}</span>',
            record.percent,
            record.percent,
            num(record.done),
            num(record.total),
        )


class ServerKeyTable(PortalTable):
    """Server keys (the secret is never shown again after creation)."""

    name = tables.Column()
    prefix = tables.Column(verbose_name="Key starts with")
    created_at = UTCColumn(verbose_name="Created")
    created_by = tables.Column(accessor="created_by__username", verbose_name="By")
    last_used_at = UTCColumn(verbose_name="Last used")
    scopes = tables.Column(empty_values=(), orderable=False, verbose_name="Scopes")
    expires_at = UTCColumn(verbose_name="Expires")
    status = tables.Column(empty_values=(), orderable=False, verbose_name="Status")
    actions = tables.TemplateColumn(
        template_name="redemption/_key_actions.html", verbose_name="", orderable=False
    )

    class Meta(PortalTable.Meta):
        model = ServerKey
        fields = ()
        orderable = False
        empty_text = "No server keys yet. Create one for each backend that calls the server API."

    def render_prefix(self, value: str) -> str:
        return format_html('<span class="mono">{}…</span>', value)

    def render_scopes(self, record: ServerKey) -> str:
        if set(record.scopes or []) >= set(rules.SERVER_KEY_SCOPES):
            return mark_safe('<span class="muted">all</span>')
        return format_html_join(
            " ", '<span class="tag">{}</span>', ((s,) for s in record.scopes or [])
        )

    def render_status(self, record: ServerKey) -> str:
        if record.revoked_at:
            return format_html(
                '<span class="badge state-invalidated">Revoked</span> {}', utc(record.revoked_at)
            )
        if record.expires_at is not None and record.has_expired(timezone.now()):
            return mark_safe('<span class="badge state-failed">Expired</span>')
        return mark_safe('<span class="badge state-available">Active</span>')


class ProfileRecordTable(PortalTable):
    """Codes and shared redemptions of one profile."""

    scan_code = tables.Column(empty_values=(), verbose_name="Scan code")
    code_type = tables.Column(accessor="code_type__name", verbose_name="Code type")
    use_type = tables.Column(accessor="code_type__use_type", verbose_name="Use type")
    state = StateColumn()
    redeemed_at = UTCColumn(verbose_name="Redeemed")
    custom_code_info = JSONColumn(verbose_name="Custom info")
    custom_redemption_info = PrettyJSONColumn(verbose_name="Redemption info")
    actions = tables.TemplateColumn(
        template_name="redemption/_profile_record_actions.html", verbose_name="", orderable=False
    )

    class Meta(PortalTable.Meta):
        orderable = False
        empty_text = "This profile has not redeemed any code."

    def __init__(self, *args: Any, reader: CodeReader = FULL, **kwargs: Any) -> None:
        self.reader = reader
        super().__init__(*args, **kwargs)

    def render_scan_code(self, record: Code | SharedRedemption) -> str:
        if isinstance(record, SharedRedemption):
            ct = record.code_type
            return format_html(
                '<a class="mono" href="{}">{}</a>', type_url(ct.name), ct.scan_code or ""
            )
        return format_html(
            '<a class="mono" href="{}">{}</a>',
            self.reader.code_url(record),
            self.reader.code_text(record),
        )

    def render_code_type(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', type_url(value), value)

    def render_use_type(self, record: Code | SharedRedemption) -> str:
        return format_html('<span class="tag">{}</span>', record.code_type.use_type)


class StaffTable(PortalTable):
    """Staff logins (superusers' Staff users page)."""

    username = tables.Column(verbose_name="User name")
    role = tables.Column(verbose_name="Role")
    is_active = tables.Column(verbose_name="Active")
    last_login = UTCColumn(verbose_name="Last sign-in")
    locked = tables.Column(verbose_name="Sign-in")
    second_factor = tables.Column(verbose_name="Two-factor")

    class Meta(PortalTable.Meta):
        orderable = False
        empty_text = "No staff users."

    def render_username(self, value: str, record: Any) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("redemption:staff_user_detail", args=[record.id]), value
        )

    def render_role(self, value: str) -> str:
        return value or "—"

    def render_is_active(self, value: bool) -> str:
        if value:
            return mark_safe('<span class="badge state-available">Active</span>')
        return mark_safe('<span class="badge state-invalidated">Deactivated</span>')

    def render_locked(self, value: bool) -> str:
        if value:
            return mark_safe('<span class="badge state-failed">Locked</span>')
        return mark_safe('<span class="muted">open</span>')

    def render_second_factor(self, value: bool) -> str:
        return "On" if value else "Off"


# --- plain rows (the template holds the markup; a row holds ready values) ---------------------


def _when(value: datetime | None) -> str | None:
    """A table cell's timestamp (see `utc`), or None for the template's dash."""
    return utc(value, TIME_FORMAT) if value else None


class InventoryRow(TypedDict):
    name: str
    url: str
    use_type: str
    use_label: str
    counts: list[str]  # in STATE_ORDER, formatted
    total: str
    webhook: bool
    badges: list[tuple[str, str]]  # (CSS class, label)


def inventory_rows(rows: list[dict[str, Any]]) -> list[InventoryRow]:
    """The inventory's rows (code_types_page's code_type, counts, total), ready to draw."""
    drawn = []
    for row in rows:
        ct, counts = row["code_type"], row["counts"]
        badges = []
        if ct.is_archived:
            badges.append(("state-redeemed", "Archived"))
        if ct.is_disabled:
            badges.append(("state-invalidated", "Disabled"))
        if not badges:
            badges.append(("state-available", "Enabled"))
        drawn.append(
            InventoryRow(
                name=ct.name,
                url=type_url(ct.name),
                use_type=ct.use_type,
                use_label="Personal" if ct.use_type == UseType.SINGLE else "Shared",
                counts=[num(counts[state]) for state in STATE_ORDER],
                total=num(row["total"]),
                webhook=bool(ct.fulfillment_url),
                badges=badges,
            )
        )
    return drawn


class CodeRow(TypedDict):
    url: str
    text: str  # masked for a Viewer while the code is live
    state: str
    redeemed_by: str | None
    redeemed_by_url: str | None
    redeemed_at: str | None
    created_at: str | None
    batch_id: str | None
    custom_info: str | None


def code_rows(codes: list[Code], *, reader: CodeReader = FULL) -> list[CodeRow]:
    """A page of one personal type's codes, as `reader` may see them."""
    return [
        CodeRow(
            url=reader.code_url(code),
            text=reader.code_text(code),
            state=code.state,
            redeemed_by=code.redeemed_by_profile_id or None,
            redeemed_by_url=(
                profile_url(code.redeemed_by_profile_id) if code.redeemed_by_profile_id else None
            ),
            redeemed_at=_when(code.redeemed_at),
            created_at=_when(code.created_at),
            batch_id=str(code.batch_id) if code.batch_id else None,
            custom_info=(
                None if code.custom_code_info is None else compact_json(code.custom_code_info)
            ),
        )
        for code in codes
    ]


class SharedRedemptionRow(TypedDict):
    profile_id: str
    profile_url: str
    profile_name: str | None
    state: str
    attempts: str
    redeemed_at: str | None
    created_at: str | None
    info: str | None
    url: str


def shared_redemption_rows(redemptions: list[SharedRedemption]) -> list[SharedRedemptionRow]:
    """A page of one shared type's redemptions (one per profile)."""
    return [
        SharedRedemptionRow(
            profile_id=sr.profile_id,
            profile_url=profile_url(sr.profile_id),
            profile_name=sr.profile_name or None,
            state=sr.state,
            attempts=num(sr.current_attempt),
            redeemed_at=_when(sr.redeemed_at),
            created_at=_when(sr.created_at),
            info=(
                None
                if sr.custom_redemption_info is None
                else compact_json(sr.custom_redemption_info)
            ),
            url=reverse("redemption:shared_redemption_detail", args=[sr.pk]),
        )
        for sr in redemptions
    ]


class BatchRow(TypedDict):
    id: str
    created_at: str | None
    kind: str
    quantity: str
    shape: str
    created_by: str | None
    invalidated_at: datetime | None
    invalidate_url: str
    export_url: str


def _batch_shape(batch: Batch) -> str:
    if batch.kind != Batch.Kind.GENERATE:
        return "—"
    parts = [batch.algorithm or "Crockford"]
    if batch.length:
        parts.append(f"{batch.length} chars")
    if batch.prefix:
        parts.append(f"prefix {batch.prefix}")
    if batch.include_check:
        parts.append("check char")
    return ", ".join(parts)


def batch_rows(batches: list[Batch]) -> list[BatchRow]:
    """Generation and import runs of one code type."""
    return [
        BatchRow(
            id=str(batch.pk),
            created_at=_when(batch.created_at),
            kind=batch.get_kind_display(),
            quantity=num(batch.quantity),
            shape=_batch_shape(batch),
            created_by=batch.created_by or None,
            invalidated_at=batch.invalidated_at,
            invalidate_url=reverse(
                "redemption:batch_invalidate", args=[batch.code_type.name, batch.pk]
            ),
            export_url=reverse("redemption:code_export", args=[batch.code_type.name])
            + "?"
            + urlencode({"batch": str(batch.pk)}),
        )
        for batch in batches
    ]


class AttemptRow(TypedDict):
    code_url: str | None  # the code column (None where the page leaves it out)
    code_text: str | None
    code_note: str | None  # the code's type, or "shared"
    attempt: str
    profile_id: str
    profile_url: str
    state: str
    started_at: str | None
    finished_at: str | None
    error_code: str | None
    error_msg: str | None
    response: str | None


class AttemptList(TypedDict):
    show_code: bool
    rows: list[AttemptRow]


def attempt_list(
    attempts: Iterable[Attempt], *, show_code: bool = True, reader: CodeReader = FULL
) -> AttemptList:
    """Fulfilment attempts with the webhook's response and errors; `show_code` adds which
    code (or shared type) each was for, as `reader` may see it."""
    rows = []
    for attempt in attempts:
        url = text = note = None
        if show_code and attempt.code is not None:
            url, text = reader.code_url(attempt.code), reader.code_text(attempt.code)
            note = attempt.code.code_type.name
        elif show_code:
            assert attempt.shared is not None  # the attempt_one_owner constraint
            ct = attempt.shared.code_type
            url, text, note = type_url(ct.name), ct.scan_code or ct.name, "shared"
        rows.append(
            AttemptRow(
                code_url=url,
                code_text=text,
                code_note=note,
                attempt=num(attempt.attempt),
                profile_id=attempt.profile_id,
                profile_url=profile_url(attempt.profile_id),
                state=attempt.state,
                started_at=_when(attempt.started_at),
                finished_at=_when(attempt.finished_at),
                error_code=attempt.error_code or None,
                error_msg=attempt.error_msg or None,
                response=None if attempt.response is None else compact_json(attempt.response, 400),
            )
        )
    return AttemptList(show_code=show_code, rows=rows)


class HistoryRow(TypedDict):
    at: str | None
    actor_label: str | None
    actor_kind: str
    action: str | None
    details: str | None


def history_rows(events: Iterable[AuditEvent]) -> list[HistoryRow]:
    """Audit events of one code or shared redemption."""
    return [
        HistoryRow(
            at=_when(event.at),
            actor_label=event.actor_label or None,
            actor_kind=event.actor_kind,
            action=event.action or None,
            details=None if event.details is None else compact_json(event.details, 300),
        )
        for event in events
    ]
