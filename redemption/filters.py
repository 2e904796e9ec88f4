"""django-filter filter sets of the staff portal."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import django_filters as filters
from django import forms
from django.db.models import Q, QuerySet

from redemption import codes, rules
from redemption.models import (
    SHARED_TRANSITIONS,
    STATE_ORDER,
    AuditEvent,
    Code,
    CodeType,
    Job,
    SharedRedemption,
    UseType,
)

# The states a shared code's per-profile record can be in.
SHARED_STATES = frozenset(SHARED_TRANSITIONS)

DATE = forms.DateInput(attrs={"type": "date"})

# Actions the services write; a static list, so the filter never scans the audit table.
KNOWN_ACTIONS = (
    "attempt.late_reply",
    "attempt.timeout",
    "batch.invalidate",
    "code.activate",
    "code.add",
    "code.fulfilment",
    "code.invalidate",
    "code.normalise",
    "code.redeem",
    "code.redeem_attempt",
    "code.reset",
    "code.update_custom_info",
    "code_type.archive",
    "code_type.create",
    "code_type.delete",
    "code_type.normalise",
    "code_type.reveal_secret",
    "code_type.rotate_secret",
    "code_type.unarchive",
    "code_type.update",
    "codes.delete_all",
    "codes.generate",
    "codes.import",
    "codes.reset_all",
    "server_key.create",
    "server_key.revoke",
    "shared.fulfilment",
    "shared.redeem",
    "shared.redeem_attempt",
    "shared_redemption.delete",
    "user_token.mint",
)


def _day_start(value: Any) -> datetime:
    return datetime.combine(value, time.min, tzinfo=UTC)


class DayFromFilter(filters.DateFilter):
    """`field >= the start of that UTC day` (keeps the column index usable)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", DATE)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__gte": _day_start(value)})


class DayToFilter(DayFromFilter):
    """`field < the start of the next UTC day`: the day itself is included."""

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__lt": _day_start(value + timedelta(days=1))})


def day_range(field_name: str, what: str) -> tuple[DayFromFilter, DayToFilter]:
    """ "<what> from" and "<what> to" filters on one timestamp, whole UTC days included."""
    return (
        DayFromFilter(field_name=field_name, label=f"{what} from"),
        DayToFilter(field_name=field_name, label=f"{what} to"),
    )


class CodeFilter(filters.FilterSet):
    """Filters of a type's code list: state, batch, created/redeemed dates, code prefix."""

    state = filters.ChoiceFilter(choices=[(s, s) for s in STATE_ORDER], empty_label="Any state")
    batch = filters.UUIDFilter(field_name="batch_id", label="Batch id")
    prefix = filters.CharFilter(method="filter_prefix", label="Code starts with")
    created_from, created_to = day_range("created_at", "Created")
    redeemed_from, redeemed_to = day_range("redeemed_at", "Redeemed")

    class Meta:
        model = Code
        fields: list[str] = []

    def __init__(
        self, data: Any = None, *args: Any, prefix_max: int | None = None, **kwargs: Any
    ) -> None:
        """`prefix_max` caps the prefix (Viewers: no longer than a masked code shows, or the
        filter would spell out a live code one character at a time). A longer one is refused
        and not shown back."""
        refused = (
            prefix_max is not None
            and data is not None
            and len(codes.canonical(data.get("prefix") or "")) > prefix_max
        )
        if refused:
            data = data.copy()
            data["prefix"] = ""
        super().__init__(data, *args, **kwargs)
        if prefix_max is not None:
            self.form.fields["prefix"].help_text = f"At most {prefix_max} characters."
        if refused:
            self.form.add_error(
                "prefix", f"Your role may filter by at most {prefix_max} characters of a code."
            )

    def filter_prefix(self, qs: QuerySet[Code], name: str, value: str) -> QuerySet[Code]:
        canon = codes.canonical(value or "")
        if not canon:
            return qs
        # The range lets a database use the canonical index; startswith keeps it exact.
        upper = canon[:-1] + chr(ord(canon[-1]) + 1)
        return qs.filter(canonical__gte=canon, canonical__lt=upper, canonical__startswith=canon)


YES_NO = [("true", "Yes"), ("false", "No")]
# The inventory's "archived" choice: hidden by default, only them, or every type.
ARCHIVED_ONLY, ARCHIVED_TOO = "only", "any"
ARCHIVED_CHOICES = [(ARCHIVED_ONLY, "Archived only"), (ARCHIVED_TOO, "Archived too")]


class CodeTypeFilter(filters.FilterSet):
    """The inventory's search and filters. The form only checks the input: the rows come from
    `selectors.code_types_page` (the one selector `GET /server/code-types` uses too), given
    `selector_kwargs()`."""

    search = filters.CharFilter(
        label="Search",
        max_length=rules.SEARCH_MAX,
        help_text="Name or description contains",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name or description"}),
    )
    use_type = filters.ChoiceFilter(
        label="Use type", choices=UseType.choices, empty_label="Any use type"
    )
    disabled = filters.ChoiceFilter(label="Disabled", choices=YES_NO, empty_label="Either")
    has_webhook = filters.ChoiceFilter(label="Webhook", choices=YES_NO, empty_label="Either")
    archived = filters.ChoiceFilter(
        label="Archived", choices=ARCHIVED_CHOICES, empty_label="Hidden"
    )

    class Meta:
        model = CodeType
        fields: list[str] = []

    def selector_kwargs(self) -> dict[str, Any]:
        """The filters as `code_types_page` takes them (call after is_valid())."""
        data = self.form.cleaned_data
        archived = data.get("archived")
        return {
            "search": data.get("search") or None,
            "use_type": data.get("use_type") or None,
            "disabled": _yes_no(data.get("disabled")),
            "has_webhook": _yes_no(data.get("has_webhook")),
            "archived": {ARCHIVED_ONLY: True, ARCHIVED_TOO: None}.get(archived or "", False),
        }


def _yes_no(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get(value or "")


class SharedRedemptionFilter(filters.FilterSet):
    """Filters of a shared type's redemptions: state, first-attempt/redeemed dates, profile."""

    state = filters.ChoiceFilter(
        choices=[(s, s) for s in STATE_ORDER if s in SHARED_STATES], empty_label="Any state"
    )
    profile = filters.CharFilter(
        field_name="profile_id",
        lookup_expr="startswith",
        label="Profile id starts with",
        max_length=rules.PROFILE_ID_MAX,
    )
    created_from, created_to = day_range("created_at", "First attempt")
    redeemed_from, redeemed_to = day_range("redeemed_at", "Redeemed")

    class Meta:
        model = SharedRedemption
        fields: list[str] = []


class JobFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Job.Kind.choices, empty_label="Any kind")
    status = filters.ChoiceFilter(choices=Job.Status.choices, empty_label="Any status")
    code_type_name = filters.CharFilter(label="Code type")

    class Meta:
        model = Job
        fields: list[str] = []


class AuditFilter(filters.FilterSet):
    action = filters.ChoiceFilter(empty_label="Any action")
    actor = filters.CharFilter(field_name="actor_label", label="Who")
    code_type_name = filters.CharFilter(label="Code type")
    scan_code = filters.CharFilter(method="filter_scan_code", label="Scan code")
    # The same by the code's id: how a Viewer's filter by a live code is addressed.
    code = filters.UUIDFilter(method="filter_code", widget=forms.HiddenInput)
    profile_id = filters.CharFilter(label="Profile id")
    date_from = DayFromFilter(field_name="at", label="From")
    date_to = DayToFilter(field_name="at", label="To")

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions = set(KNOWN_ACTIONS)
        if self.data.get("action"):
            actions.add(self.data["action"][:64])  # an action added later still filters
        self.filters["action"].extra["choices"] = [(a, a) for a in sorted(actions)]

    def filter_scan_code(self, qs: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[Any]:
        if not value:
            return qs
        code = Code.objects.filter(canonical=codes.canonical(value)).only("pk", "scan_code").first()
        if code is None:
            return qs.filter(scan_code=codes.display(value))
        return qs.filter(Q(target_id=str(code.pk)) | Q(scan_code=code.scan_code))

    def filter_code(self, qs: QuerySet[AuditEvent], name: str, value: Any) -> QuerySet[Any]:
        code = Code.objects.filter(pk=value).only("pk", "scan_code").first()
        if code is None:
            return qs.none()
        return qs.filter(Q(target_id=str(code.pk)) | Q(scan_code=code.scan_code))
