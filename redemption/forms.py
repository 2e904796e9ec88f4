"""Input validation of the staff portal's forms.

Limits and patterns come from `rules`; the services keep the rules that need the database or
cross fields, and each form says which of its fields a service's error names (`service_fields`).
"""

import json
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from redemption import codes, rules
from redemption.models import STATE_ORDER, State, UseType

UTC_HELP = "UTC, e.g. 2026-12-24 18:00"
INITIAL_STATE_CHOICES = [(State.INACTIVE, "Inactive"), (State.AVAILABLE, "Available")]
STATE_CHOICES = [(s, s) for s in STATE_ORDER]
# Dangerous states: delete/reset leave them alone unless the operator ticks them explicitly.
PROTECTED_STATES = (State.REDEEMED, State.IN_PROGRESS)


class UTCDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class JSONObjectField(forms.JSONField):
    """A JSON object typed into a textarea; empty means {}."""

    default_error_messages = {"invalid": 'Enter valid JSON, e.g. {"sku": "GC-25"}.'}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget", forms.Textarea(attrs={"rows": 5, "class": "mono", "spellcheck": "false"})
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if value in (None, ""):
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)

    def clean(self, value: Any) -> Any:
        result = super().clean(value)
        if result in (None, ""):
            return {}
        if not isinstance(result, dict):
            raise ValidationError('Must be a JSON object, e.g. {"sku": "GC-25"}.')
        return result


class ReplacingJSONObjectField(JSONObjectField):
    """A JSON object that replaces a value when typed; left empty, nothing is replaced (None).
    `{}` typed out is an (empty) object like any other."""

    def clean(self, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return super().clean(value)


class PortalForm(forms.Form):
    """A form that shows a service's field errors next to its own fields."""

    # Services name fields as the API does (camelCase, "fulfillment.url"). A service field
    # whose form field has another name is listed here; one of the same name needs no entry.
    service_fields: ClassVar[Mapping[str, str]] = {}

    def field_for(self, service_field: str) -> str | None:
        """This form's field that a service's error about `service_field` belongs to."""
        name = self.service_fields.get(service_field, service_field)
        return name if name in self.fields else None


def _code_type_name(value: str) -> None:
    if not rules.is_code_type_name(value):
        raise ValidationError(f"Use {rules.CODE_TYPE_NAME_RULE}.", code="invalid")


class CodeTypeForm(PortalForm):
    """Create or edit a code type, including its fulfilment webhook."""

    service_fields = {
        "codeType": "name",
        "codeUseType": "use_type",
        "scanCode": "scan_code",
        "validStart": "valid_start",
        "validEnd": "valid_end",
        "maxRedemptions": "max_redemptions",
        "customCodeInfo": "custom_code_info",
        "isDisabled": "is_disabled",
        "fulfillment.url": "fulfillment_url",
        "fulfillment.async": "fulfillment_async",
        "fulfillment.maxRetries": "fulfillment_max_retries",
        "fulfillment.timeoutSeconds": "fulfillment_timeout_seconds",
    }

    name = forms.CharField(
        max_length=rules.CODE_TYPE_NAME_MAX,
        validators=[_code_type_name],
        label="Code type name",
        help_text=f"{rules.CODE_TYPE_NAME_RULE}; cannot be changed later.",
    )
    use_type = forms.ChoiceField(
        choices=UseType.choices,
        initial=UseType.SINGLE,
        label="Use type",
        widget=forms.RadioSelect,
        help_text=(
            "Personal: one code per person. Shared: one public code everyone may redeem once."
        ),
    )
    description = forms.CharField(
        required=False, max_length=rules.DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )
    scan_code = forms.CharField(
        required=False,
        max_length=rules.SCAN_CODE_WRITTEN_MAX,
        label="Shared scan code",
        help_text="Shared types only: the public code, e.g. FREESTUFF.",
    )
    valid_start = forms.DateTimeField(
        required=False, label="Valid from (UTC)", widget=UTCDateTimeInput(), help_text=UTC_HELP
    )
    valid_end = forms.DateTimeField(
        required=False, label="Valid until (UTC)", widget=UTCDateTimeInput(), help_text=UTC_HELP
    )
    max_redemptions = forms.IntegerField(
        required=False,
        min_value=rules.MAX_REDEMPTIONS_MIN,
        max_value=rules.INT32_MAX,
        label="Redemption cap",
        help_text="Shared types only; empty means unlimited.",
    )
    custom_code_info = JSONObjectField(label="Custom code info (JSON object)")
    is_disabled = forms.BooleanField(
        required=False, label="Disabled (nobody can redeem codes of this type)"
    )
    fulfillment_url = forms.URLField(
        required=False,
        max_length=rules.WEBHOOK_URL_MAX,
        validators=[
            RegexValidator(
                rules.WEBHOOK_URL_PATTERN, f"Enter {rules.WEBHOOK_URL_RULE}.", code="invalid"
            )
        ],
        label="Fulfilment webhook URL",
        help_text="Empty: codes are redeemed at once, without a webhook.",
    )
    fulfillment_async = forms.BooleanField(
        required=False, label="Asynchronous (the backend reports the result later)"
    )
    fulfillment_max_retries = forms.IntegerField(
        min_value=rules.WEBHOOK_RETRIES_MIN,
        max_value=rules.WEBHOOK_RETRIES_MAX,
        initial=rules.WEBHOOK_RETRIES_DEFAULT,
        label="Max retries",
    )
    fulfillment_timeout_seconds = forms.IntegerField(
        min_value=rules.WEBHOOK_TIMEOUT_MIN,
        max_value=rules.WEBHOOK_TIMEOUT_MAX,
        initial=rules.WEBHOOK_TIMEOUT_DEFAULT,
        label="Timeout (seconds)",
    )
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            self.fields["name"].disabled = True
            self.fields["use_type"].disabled = True

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        use_type = data.get("use_type")
        if use_type == UseType.MULTI and not data.get("scan_code"):
            self.add_error("scan_code", "A shared code type needs its scan code.")
        if use_type == UseType.SINGLE:
            if data.get("scan_code"):
                self.add_error("scan_code", "Only shared code types have a scan code.")
            if data.get("max_redemptions"):
                self.add_error("max_redemptions", "Only shared code types have a cap.")
        start, end = data.get("valid_start"), data.get("valid_end")
        if start and end and end <= start:
            self.add_error("valid_end", "Must be later than the start.")
        return data

    def fulfillment(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data.get("fulfillment_url"):
            return None
        return {
            "url": data["fulfillment_url"],
            "async": bool(data.get("fulfillment_async")),
            "maxRetries": data.get("fulfillment_max_retries") or rules.WEBHOOK_RETRIES_DEFAULT,
            "timeoutSeconds": (
                data.get("fulfillment_timeout_seconds") or rules.WEBHOOK_TIMEOUT_DEFAULT
            ),
        }


class GenerateForm(PortalForm):
    service_fields = {
        "codeState": "state",
        "prefix": "code_prefix",
        "algorithmName": "algorithm",
        "algorithmDetails.length": "length",
        "algorithmDetails.includeCheck": "include_check",
        "customCodeInfo": "custom_code_info",
    }

    quantity = forms.IntegerField(
        min_value=rules.QUANTITY_MIN,
        max_value=rules.JOB_QUANTITY_MAX,
        help_text=(
            f"{rules.QUANTITY_MIN} to {rules.JOB_QUANTITY_MAX:,}. "
            "Runs as a background job; you can watch its progress."
        ),
    )
    state = forms.ChoiceField(
        choices=INITIAL_STATE_CHOICES,
        initial=State.INACTIVE,
        label="Initial state",
        help_text="Inactive codes must be activated (e.g. when a retail card is sold).",
    )
    algorithm = forms.ChoiceField(
        choices=[(a, a) for a in codes.ALGORITHMS],
        initial=codes.DEFAULT_ALGORITHM,
        label="Algorithm",
        help_text="Crockford: groups of 4; FiveByFive: 5 groups of 5; StructuredGuid: a UUID.",
    )
    length = forms.IntegerField(
        required=False,
        min_value=rules.CODE_LENGTH_MIN,
        max_value=rules.CODE_LENGTH_MAX,
        initial=rules.CODE_LENGTH_DEFAULT,
        help_text=f"Crockford only: {rules.CODE_LENGTH_MIN}–{rules.CODE_LENGTH_MAX} characters.",
    )
    code_prefix = forms.CharField(
        required=False,
        max_length=rules.PREFIX_MAX,
        label="Prefix",
        help_text="Optional, e.g. XMAS.",
    )
    include_check = forms.BooleanField(
        required=False,
        label="Add a check character (catches typing mistakes)",
    )
    custom_code_info = JSONObjectField(label="Custom code info for every code (JSON object)")

    def algorithm_details(self) -> dict[str, Any]:
        data = self.cleaned_data
        details: dict[str, Any] = {}
        if data.get("algorithm") == "Crockford" and data.get("length"):
            details["length"] = data["length"]
        if data.get("include_check"):
            details["includeCheck"] = True
        return details


class ImportForm(PortalForm):
    """A CSV upload of at most `max_bytes` (the API's import limit)."""

    service_fields = {"upload": "file"}

    file = forms.FileField(
        label="CSV file",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}),
    )
    preserve_state = forms.BooleanField(
        label="Preserve state and history (migration import)",
        required=False,
        help_text="Lines keep every state, their redeemer, times, invalidation reason and "
        "customRedemptionInfo; a header row names the columns (an export re-imports as it is). "
        "A shared type takes one row per profile redemption. Ops only.",
    )

    def __init__(self, *args: Any, max_bytes: int, too_large: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes
        self.too_large = too_large  # the upload was stopped at max_bytes, before it ended
        self.fields[
            "file"
        ].help_text = (
            f"One code per line: scanCode[,codeState][,customCodeInfo]. Up to {_size(max_bytes)}."
        )
        self.fields["file"].widget.attrs["data-max-bytes"] = str(max_bytes)
        self.fields["file"].widget.attrs["data-too-large"] = self.too_large_message()

    def too_large_message(self) -> str:
        return f"The file is larger than {_size(self.max_bytes)}, the most an import takes."

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload is not None and upload.size is not None and upload.size > self.max_bytes:
            raise ValidationError(self.too_large_message(), code="too_large")
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.too_large:
            self.errors.pop("file", None)  # "required": the stopped upload left no file
            self.add_error("file", ValidationError(self.too_large_message(), code="too_large"))
        return cleaned


def _size(n: int) -> str:
    """Bytes as the portal writes a size limit: MiB when whole, else bytes."""
    mib = 1024 * 1024
    return f"{n // mib:,} MiB" if n % mib == 0 else f"{n:,} bytes"


class AddCodeForm(PortalForm):
    service_fields = {
        "scanCode": "scan_code",
        "codeState": "state",
        "customCodeInfo": "custom_code_info",
    }

    scan_code = forms.CharField(max_length=rules.SCAN_CODE_WRITTEN_MAX, label="Scan code")
    state = forms.ChoiceField(choices=INITIAL_STATE_CHOICES, initial=State.INACTIVE)
    custom_code_info = JSONObjectField(label="Custom code info (JSON object)")


class ReasonForm(PortalForm):
    reason = forms.CharField(
        max_length=rules.INVALIDATION_REASON_MAX,
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown on the code page and kept in the audit log.",
    )


class OptionalReasonForm(ReasonForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = False
        self.fields["reason"].label = "Invalidation reason (optional)"


class BulkCodesForm(PortalForm):
    """Delete or reset every code of a type in the chosen states, confirmed by its typed name."""

    service_fields = {"confirm": "confirm_name", "confirmName": "confirm_name"}

    states = forms.MultipleChoiceField(
        choices=STATE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        label="States to include",
    )
    confirm_name = forms.CharField(
        max_length=rules.CODE_TYPE_NAME_MAX,
        label="Type the code type's name to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, code_type_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.code_type_name = code_type_name
        if not self.is_bound:
            self.initial.setdefault("states", [s for s in STATE_ORDER if s not in PROTECTED_STATES])

    def clean_confirm_name(self) -> str:
        value = self.cleaned_data["confirm_name"]
        if value != self.code_type_name:
            raise ValidationError(
                "That is not this code type's name; nothing was changed. "
                "Type it exactly (it is case-sensitive)."
            )
        return value


class ResetCodesForm(BulkCodesForm):
    service_fields = {**BulkCodesForm.service_fields, "toState": "to_state"}

    to_state = forms.ChoiceField(
        choices=INITIAL_STATE_CHOICES, initial=State.INACTIVE, label="Reset to"
    )


class LookupForm(forms.Form):
    q = forms.CharField(
        max_length=120,
        label="Scan code",
        help_text="Any spelling: case, spaces and hyphens do not matter.",
        widget=forms.TextInput(
            attrs={"autofocus": True, "spellcheck": "false", "autocomplete": "off"}
        ),
    )


class TestCodeForm(forms.Form):
    code_type = forms.ChoiceField(label="Code type")
    state = forms.ChoiceField(choices=STATE_CHOICES, initial=State.AVAILABLE)

    def __init__(self, *args: Any, code_type_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["code_type"]).choices = code_type_choices


class ChartTypeForm(forms.Form):
    """Which code type the dashboard's redemptions chart counts (empty: every type)."""

    code_type = forms.ChoiceField(label="Code type", required=False)

    def __init__(self, *args: Any, code_type_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["code_type"]).choices = [
            ("", "All code types"),
            *code_type_choices,
        ]

    def chosen(self) -> str | None:
        """The chosen type's name, or None for every type (also when the choice was refused)."""
        if not self.is_bound or not self.is_valid():
            return None
        return self.cleaned_data["code_type"] or None


class CodeResetForm(forms.Form):
    state = forms.ChoiceField(choices=INITIAL_STATE_CHOICES, label="Reset to")


class CustomInfoForm(PortalForm):
    service_fields = {"customCodeInfo": "custom_code_info"}

    custom_code_info = JSONObjectField(
        label="Custom code info (JSON object)",
        help_text=f"A JSON object of up to {rules.JSON_OBJECT_SIZE}.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)


class ActivateForm(PortalForm):
    """Activate a code, optionally replacing its custom info (as the API's activate can)."""

    service_fields = {"customCodeInfo": "custom_code_info"}

    custom_code_info = ReplacingJSONObjectField(
        label="New custom code info (optional)",
        help_text=f"Leave empty to keep the current custom info; a JSON object of up to "
        f"{rules.JSON_OBJECT_SIZE} replaces it ({{}} clears it).",
        widget=forms.Textarea(
            attrs={"rows": 3, "class": "mono", "spellcheck": "false", "placeholder": "{}"}
        ),
    )


class ProfileForm(forms.Form):
    """User Monitoring's search: a profile id, or the start of an id or of a name."""

    profile = forms.CharField(
        max_length=rules.PROFILE_SEARCH_MAX,
        label="Profile id or name",
        help_text="A whole profile id, or the start of an id or of a name.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    code_type = forms.ChoiceField(label="Code type", required=False)

    def __init__(self, *args: Any, code_type_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["code_type"]).choices = [
            ("", "All code types"),
            *code_type_choices,
        ]


class ServerKeyForm(PortalForm):
    service_fields = {"expiresInDays": "expires_in_days"}

    name = forms.CharField(
        max_length=rules.SERVER_KEY_NAME_MAX,
        label="Name",
        help_text="Which backend uses it, e.g. “web shop production”.",
    )
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in rules.SERVER_KEY_SCOPES],
        initial=list(rules.SERVER_KEY_SCOPES),
        widget=forms.CheckboxSelectMultiple,
        label="Scopes",
        help_text="What the key may call; give each backend only what it needs.",
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=rules.SERVER_KEY_EXPIRY_DAYS_MIN,
        max_value=rules.SERVER_KEY_EXPIRY_DAYS_MAX,
        label="Expires after (days)",
        help_text="Empty: never expires.",
    )


# --- brainCloud apps (superusers) ----------------------------------------------------------------


class BraincloudAppEditForm(PortalForm):
    """What a superuser may change on a brainCloud app."""

    service_fields = {"sessionSeconds": "session_seconds"}

    name = forms.CharField(
        max_length=rules.WIRE_APP_NAME_MAX,
        required=False,
        label="Name",
        help_text="To tell apps apart here, e.g. “Space game (production)”.",
    )
    allow_anonymous = forms.BooleanField(
        required=False,
        label="Allow Anonymous sign-in",
        help_text="External sign-in (a user token from your backend) is always allowed.",
    )
    session_seconds = forms.IntegerField(
        min_value=rules.WIRE_SESSION_SECONDS_MIN,
        max_value=rules.WIRE_SESSION_SECONDS_MAX,
        initial=rules.WIRE_SESSION_SECONDS_DEFAULT,
        label="Session lifetime (seconds)",
        help_text="A session ends after this long without a packet.",
    )
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        label="Enabled",
        help_text="A disabled app's packets are refused and its sessions end.",
    )


class BraincloudAppCreateForm(BraincloudAppEditForm):
    """A new brainCloud app: its id (as in brainCloud) and, optionally, its current secret."""

    service_fields = {"appId": "app_id", "sessionSeconds": "session_seconds"}
    field_order = ["app_id", "name", "secret", "allow_anonymous", "session_seconds"]

    app_id = forms.CharField(
        max_length=rules.WIRE_APP_ID_MAX,
        label="App id",
        help_text=f"The app id your clients already send ({rules.WIRE_APP_ID_RULE}).",
    )
    secret = forms.CharField(
        required=False,
        max_length=rules.WIRE_APP_SECRET_MAX,
        label="App secret",
        help_text="Your app's brainCloud secret, so clients keep working unchanged; "
        "empty: a new one is generated.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["enabled"]


# --- staff sign-in and staff users --------------------------------------------------------------

STAFF_ROLE_CHOICES = [
    ("Viewer", "Viewer — reads everything (live codes masked)"),
    ("Support", "Support — single-code and user-monitoring actions"),
    ("Ops", "Ops — code types, bulk work, re-issuing redeemed codes"),
    ("admin", "admin — superuser: also server keys and staff users"),
]


class OneTimeCodeForm(PortalForm):
    """A code from an authenticator app (or, at sign-in, a recovery code)."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


class StaffUserCreateForm(PortalForm):
    username = forms.CharField(label="User name", max_length=150)
    role = forms.ChoiceField(choices=STAFF_ROLE_CHOICES, initial="Viewer")


class StaffRoleForm(PortalForm):
    role = forms.ChoiceField(choices=STAFF_ROLE_CHOICES)
