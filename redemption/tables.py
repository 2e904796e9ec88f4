"""django-tables2 tables of the staff portal."""

from typing import Any
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
    CodeType,
    Job,
    ServerKey,
    SharedRedemption,
)
from redemption.templatetags.portal import compact_json, num, pretty_json, state_badge, utc

TABLE_TEMPLATE = "redemption/_table.html"


def profile_url(profile_id: str) -> str:
    return reverse("redemption:user_monitoring") + "?" + urlencode({"profile": profile_id})


def type_url(name: str) -> str:
    return reverse("redemption:code_type_detail", args=[name])


class UTCColumn(tables.Column):
    """A timestamp shown in UTC with an explicit label."""

    def render(self, value: Any) -> str:
        return utc(value, "%Y-%m-%d %H:%M")


class NumColumn(tables.Column):
    """A right-aligned whole number with thousands separators."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        super().__init__(*args, **kwargs)

    def render(self, value: Any) -> str:
        return num(value)


class StateColumn(tables.Column):
    def render(self, value: str) -> str:
        return state_badge(value)


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


class InventoryTable(PortalTable):
    """Design › Marketplace: one row per code type (a keyset page by name)."""

    name = tables.Column(accessor="code_type__name", verbose_name="Code type")
    use_type = tables.Column(accessor="code_type__use_type", verbose_name="Use type")
    total = NumColumn(verbose_name="Total")
    webhook = tables.Column(accessor="code_type__fulfillment_url", verbose_name="Webhook")
    status = tables.Column(accessor="code_type", verbose_name="Status")

    class Meta(PortalTable.Meta):
        sequence = ("name", "use_type", "...", "total", "webhook", "status")
        orderable = False
        empty_text = "No code type matches. Clear the search or the filters."
        row_attrs = {"data-code-type": lambda record: record["code_type"].name}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        extra = [
            (state, NumColumn(accessor=f"counts__{state}", verbose_name=state))
            for state in STATE_ORDER
        ]
        super().__init__(*args, extra_columns=extra, **kwargs)

    def render_name(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', type_url(value), value)

    def render_use_type(self, value: str) -> str:
        label = "Personal" if value == "SINGLE" else "Shared"
        return format_html('<span class="tag">{}</span> {}', value, label)

    def render_webhook(self, value: str) -> str:
        return mark_safe('<span class="badge state-inprogress">Webhook</span>')

    def render_status(self, value: CodeType) -> str:
        badges = []
        if value.is_archived:
            badges.append(("state-redeemed", "Archived"))
        if value.is_disabled:
            badges.append(("state-invalidated", "Disabled"))
        if not badges:
            badges.append(("state-available", "Enabled"))
        return format_html_join(" ", '<span class="badge {}">{}</span>', badges)


class CodeTable(PortalTable):
    """Codes of one personal type (keyset-paginated; ordered by id)."""

    scan_code = tables.Column(verbose_name="Scan code")
    state = StateColumn()
    batch = tables.Column(accessor="batch_id", verbose_name="Batch")
    redeemed_by_profile_id = tables.Column(verbose_name="Redeemed by")
    redeemed_at = UTCColumn(verbose_name="Redeemed")
    created_at = UTCColumn(verbose_name="Created")
    custom_code_info = JSONColumn(verbose_name="Custom info")

    class Meta(PortalTable.Meta):
        model = Code
        fields = ()
        orderable = False
        sequence = (
            "scan_code",
            "state",
            "redeemed_by_profile_id",
            "redeemed_at",
            "created_at",
            "batch",
            "custom_code_info",
        )
        empty_text = "No codes match. Generate or import codes, or clear the filters."

    def __init__(self, *args: Any, reader: CodeReader = FULL, **kwargs: Any) -> None:
        self.reader = reader
        super().__init__(*args, **kwargs)

    def render_scan_code(self, value: str, record: Code) -> str:
        return format_html(
            '<a class="mono" href="{}">{}</a>',
            self.reader.code_url(record),
            self.reader.code_text(record),
        )

    def render_batch(self, value: Any) -> str:
        return format_html('<span class="mono" title="{}">{}…</span>', value, str(value)[:8])

    def render_redeemed_by_profile_id(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', profile_url(value), value)


class SharedRedemptionTable(PortalTable):
    """Per-profile redemptions of one shared code type."""

    profile_id = tables.Column(verbose_name="Profile id")
    profile_name = tables.Column(verbose_name="Profile name")
    state = StateColumn()
    current_attempt = NumColumn(verbose_name="Attempts")
    redeemed_at = UTCColumn(verbose_name="Redeemed")
    created_at = UTCColumn(verbose_name="First attempt")
    custom_redemption_info = JSONColumn(verbose_name="Redemption info")
    details = tables.Column(empty_values=(), verbose_name="", orderable=False)

    class Meta(PortalTable.Meta):
        model = SharedRedemption
        fields = ()
        orderable = False
        empty_text = "Nobody has redeemed this shared code yet."

    def render_profile_id(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', profile_url(value), value)

    def render_details(self, record: SharedRedemption) -> str:
        return format_html(
            '<a href="{}">Details</a>',
            reverse("redemption:shared_redemption_detail", args=[record.pk]),
        )


class BatchTable(PortalTable):
    """Generation and import runs of one code type."""

    created_at = UTCColumn(verbose_name="Created")
    kind = tables.Column()
    quantity = NumColumn()
    shape = tables.Column(empty_values=(), verbose_name="Shape", orderable=False)
    created_by = tables.Column(verbose_name="By")
    id = tables.Column(verbose_name="Batch id")
    actions = tables.TemplateColumn(
        template_name="redemption/_batch_actions.html", verbose_name="", orderable=False
    )

    class Meta(PortalTable.Meta):
        model = Batch
        fields = ()
        orderable = False
        empty_text = "No batches yet."

    def render_id(self, value: Any) -> str:
        return format_html('<span class="mono">{}</span>', value)

    def render_shape(self, record: Batch) -> str:
        if record.kind != Batch.Kind.GENERATE:
            return "—"
        parts = [record.algorithm or "Crockford"]
        if record.length:
            parts.append(f"{record.length} chars")
        if record.prefix:
            parts.append(f"prefix {record.prefix}")
        if record.include_check:
            parts.append("check char")
        return ", ".join(parts)


class AttemptTable(PortalTable):
    """Fulfilment attempts with the webhook's response and errors."""

    code = tables.Column(empty_values=(), verbose_name="Code", orderable=False)
    attempt = NumColumn(verbose_name="#")
    profile_id = tables.Column(verbose_name="Profile")
    state = StateColumn()
    started_at = UTCColumn(verbose_name="Started")
    finished_at = UTCColumn(verbose_name="Finished")
    error_code = tables.Column(verbose_name="Error")
    error_msg = tables.Column(verbose_name="Message")
    response = JSONColumn(
        verbose_name="Response", attrs={"td": {"class": "json-cell wide"}}, limit=400
    )

    class Meta(PortalTable.Meta):
        model = Attempt
        fields = ()
        orderable = False
        empty_text = "No fulfilment attempts."

    def __init__(
        self, *args: Any, show_code: bool = True, reader: CodeReader = FULL, **kwargs: Any
    ) -> None:
        self.reader = reader
        exclude = () if show_code else ("code",)
        super().__init__(*args, exclude=exclude, **kwargs)

    def render_code(self, record: Attempt) -> str:
        if record.code is not None:
            return format_html(
                '<a class="mono" href="{}">{}</a> <span class="muted">{}</span>',
                self.reader.code_url(record.code),
                self.reader.code_text(record.code),
                record.code.code_type.name,
            )
        assert record.shared is not None  # the attempt_one_owner constraint
        ct = record.shared.code_type
        return format_html(
            '<a class="mono" href="{}">{}</a> <span class="muted">shared</span>',
            type_url(ct.name),
            ct.scan_code or ct.name,
        )

    def render_profile_id(self, value: str) -> str:
        return format_html('<a href="{}">{}</a>', profile_url(value), value)


class HistoryTable(PortalTable):
    """Audit events of one code."""

    at = UTCColumn(verbose_name="When")
    actor_label = tables.Column(verbose_name="Who", attrs={"td": {"class": "nowrap"}})
    action = tables.Column()
    details = JSONColumn(
        attrs={"td": {"class": "json-cell wide"}}, verbose_name="Details", limit=300
    )

    class Meta(PortalTable.Meta):
        model = AuditEvent
        fields = ()
        orderable = False
        empty_text = "No history."

    def render_actor_label(self, value: str, record: AuditEvent) -> str:
        return format_html('{} <span class="muted">({})</span>', value, record.actor_kind)


class AuditTable(HistoryTable):
    """The whole audit log."""

    code_type_name = tables.Column(verbose_name="Code type")
    scan_code = tables.Column(verbose_name="Scan code")
    profile_id = tables.Column(verbose_name="Profile")

    class Meta(HistoryTable.Meta):
        sequence = ("at", "actor_label", "action", "code_type_name", "scan_code", "profile_id")
        empty_text = "No audit events match these filters."

    def __init__(self, *args: Any, reader: CodeReader = FULL, **kwargs: Any) -> None:
        self.reader = reader
        super().__init__(*args, **kwargs)

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
            utc(value, "%Y-%m-%d %H:%M"),
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
