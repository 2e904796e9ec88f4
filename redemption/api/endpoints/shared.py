"""Pieces several endpoints share: input fields, path parameters, replies and error groups."""

from redemption import codes, rules
from redemption import exceptions as exc
from redemption.api.spec import PathParam, Reply
from redemption.api.validation import Field
from redemption.models import INITIAL_STATES, STATE_ORDER, State, UseType

# --- input fields ---------------------------------------------------------------------------

# A scan code as written: checked by the service (INVALID_SCAN_CODE), stated here.
SCAN_CODE_DOC = {
    "maxLength": rules.SCAN_CODE_WRITTEN_MAX,
    "pattern": rules.whole(rules.SCAN_CODE_INPUT_REGEX),
}
SCAN_CODE = Field(
    "scanCode",
    "string",
    required=True,
    documented=SCAN_CODE_DOC,
    description="Any spelling: case, spaces and hyphens do not matter; O reads as 0, I and L as 1.",
)
NEW_SCAN_CODE = Field(
    "scanCode",
    "string",
    required=True,
    max=rules.SCAN_CODE_WRITTEN_MAX,
    documented=SCAN_CODE_DOC,
    description=f"{rules.SCAN_CODE_RULE}.",
)
_NAME_RULE = f"must be {rules.CODE_TYPE_NAME_RULE}"
CODE_TYPE = Field(
    "codeType", "string", required=True, pattern=rules.CODE_TYPE_NAME_PATTERN, rule=_NAME_RULE
)
CODE_TYPE_OPTIONAL = Field(
    "codeType",
    "string",
    nullable=True,
    pattern=rules.CODE_TYPE_NAME_PATTERN,
    rule=_NAME_RULE,
    description="When given, the code must belong to this code type.",
)
_ANY_OBJECT = f"Any JSON object up to {rules.JSON_OBJECT_SIZE}."
CUSTOM_CODE_INFO = Field("customCodeInfo", "object", nullable=True, description=_ANY_OBJECT)
ACTIVATE_CUSTOM_CODE_INFO = Field(
    "customCodeInfo",
    "object",
    nullable=True,
    description=f"Replaces the code's custom info when given, {{}} included (null or absent: "
    f"kept). {_ANY_OBJECT}",
)
CUSTOM_REDEMPTION_INFO = Field(
    "customRedemptionInfo", "object", nullable=True, description=_ANY_OBJECT
)
PROFILE_ID = Field(
    "profileId", "string", required=True, min=rules.PROFILE_ID_MIN, max=rules.PROFILE_ID_MAX
)
PROFILE_NAME = Field("profileName", "string", nullable=True, max=rules.PROFILE_NAME_MAX)
INITIAL_STATE = Field(
    "codeState",
    "enum",
    nullable=True,
    choices=tuple(s for s in STATE_ORDER if s in INITIAL_STATES),
    default=State.INACTIVE.value,
)
REDEEM_FIELDS = (SCAN_CODE, CODE_TYPE_OPTIONAL, CUSTOM_REDEMPTION_INFO)
# Paged lists: `limit` rows a page, then `cursor` = the nextCursor of the page before.
PAGE_FIELDS = (
    Field(
        "limit",
        "integer",
        min=rules.PAGE_LIMIT_MIN,
        max=rules.PAGE_LIMIT_MAX,
        default=rules.PAGE_LIMIT_DEFAULT,
        description="Rows on this page.",
    ),
    Field(
        "cursor",
        "string",
        min=1,
        max=rules.CURSOR_MAX,
        pattern=rules.CURSOR_PATTERN,
        rule=f"must be {rules.CURSOR_RULE}",
        description="The nextCursor of the previous page (opaque); omit it for the first page. "
        "A cursor the list did not hand out is refused (400).",
    ),
)
CODE_TYPE_FILTERS = (
    Field(
        "search",
        "string",
        min=1,
        max=rules.SEARCH_MAX,
        description="Only types whose name or description contains this (any case).",
    ),
    Field("useType", "enum", choices=tuple(UseType.values), description="Only this use type."),
    Field("disabled", "boolean", description="Only disabled (true) or enabled (false) types."),
    Field(
        "hasWebhook",
        "boolean",
        description="Only types with (true) or without (false) a fulfilment webhook.",
    ),
    Field(
        "archived",
        "boolean",
        default=False,
        description="Archived types are left out unless this is true (then only they are listed).",
    ),
)
FULFILLMENT = Field(
    "fulfillment",
    "object",
    nullable=True,
    description="Webhook that fulfils each redemption; null for none.",
    inner=(
        Field(
            "url",
            "string",
            required=True,
            max=rules.WEBHOOK_URL_MAX,
            pattern=rules.WEBHOOK_URL_PATTERN,
            rule=f"must be {rules.WEBHOOK_URL_RULE}",
        ),
        Field("async", "boolean", default=False),
        Field(
            "maxRetries",
            "integer",
            min=rules.WEBHOOK_RETRIES_MIN,
            max=rules.WEBHOOK_RETRIES_MAX,
            default=rules.WEBHOOK_RETRIES_DEFAULT,
        ),
        Field(
            "timeoutSeconds",
            "integer",
            min=rules.WEBHOOK_TIMEOUT_MIN,
            max=rules.WEBHOOK_TIMEOUT_MAX,
            default=rules.WEBHOOK_TIMEOUT_DEFAULT,
        ),
    ),
)
CODE_TYPE_SETTINGS = (
    Field("description", "string", nullable=True, max=rules.DESCRIPTION_MAX),
    Field("validStart", "datetime", nullable=True),
    Field("validEnd", "datetime", nullable=True),
    Field(
        "maxRedemptions",
        "integer",
        nullable=True,
        min=rules.MAX_REDEMPTIONS_MIN,
        max=rules.INT32_MAX,
        description="Shared types only; null for unlimited.",
    ),
    CUSTOM_CODE_INFO,
    Field("isDisabled", "boolean"),
    FULFILLMENT,
)
CODE_TYPE_CREATE_FIELDS = (
    CODE_TYPE,
    Field("codeUseType", "enum", choices=tuple(UseType.values), default=UseType.SINGLE.value),
    Field(
        "scanCode",
        "string",
        nullable=True,
        max=rules.SCAN_CODE_WRITTEN_MAX,
        documented=SCAN_CODE_DOC,
        description="The public scan code of a shared (MULTI) type; null for personal types.",
    ),
    *CODE_TYPE_SETTINGS,
)
# A shared type needs its scan code; a personal one has neither a scan code nor a cap.
CODE_TYPE_CREATE_RULES = {
    "if": {
        "properties": {"codeUseType": {"const": UseType.MULTI.value}},
        "required": ["codeUseType"],
    },
    "then": {"required": ["scanCode"], "properties": {"scanCode": {"type": "string"}}},
    "else": {"properties": {"scanCode": {"type": "null"}, "maxRedemptions": {"type": "null"}}},
}
CODE_TYPE_UPDATE_FIELDS = (
    Field(
        "scanCode",
        "string",
        max=rules.SCAN_CODE_WRITTEN_MAX,
        documented=SCAN_CODE_DOC,
        description="Shared (MULTI) types only (else 409 REDEMPTION_CODE_TYPE_CODE_USE_ERROR).",
    ),
    *CODE_TYPE_SETTINGS,
    Field(
        "version",
        "integer",
        min=1,
        max=rules.INT32_MAX,
        description="When given, the update only applies if the code type still has it.",
    ),
)


def generate_fields(max_quantity: int) -> tuple[Field, ...]:
    """The body of a generate request that may ask for up to `max_quantity` codes."""
    return (
        Field("quantity", "integer", required=True, min=rules.QUANTITY_MIN, max=max_quantity),
        INITIAL_STATE,
        CUSTOM_CODE_INFO,
        Field(
            "prefix",
            "string",
            nullable=True,
            max=rules.PREFIX_INPUT_MAX,
            documented={"pattern": rules.whole(rules.PREFIX_INPUT_REGEX)},
            description=f"{rules.PREFIX_RULE}; empty or null for none.",
        ),
        Field(
            "algorithmName",
            "enum",
            nullable=True,
            choices=codes.ALGORITHMS,
            default=codes.DEFAULT_ALGORITHM,
        ),
        Field(
            "algorithmDetails",
            "object",
            nullable=True,
            inner=(
                Field(
                    "length",
                    "integer",
                    min=rules.CODE_LENGTH_MIN,
                    max=rules.CODE_LENGTH_MAX,
                    default=rules.CODE_LENGTH_DEFAULT,
                ),
                Field("includeCheck", "boolean", default=False),
            ),
        ),
    )


# The code shapes whose length is fixed, and the one without a check character.
GENERATE_RULES = {
    "allOf": [
        {
            "if": {"properties": {"algorithmName": {"const": name}}, "required": ["algorithmName"]},
            "then": {
                "properties": {
                    "algorithmDetails": {
                        "anyOf": [{"type": "null"}, {"properties": details}],
                    }
                }
            },
        }
        for name, details in (
            ("FiveByFive", {"length": {"const": 25}}),
            ("StructuredGuid", {"length": {"const": 32}, "includeCheck": {"const": False}}),
        )
    ]
}

# Documented here, checked by the service that processes the reply.
ASYNC_REPLY_DOC = (
    Field("success", "boolean", required=True),
    Field("complete", "boolean", description="Default: true when success is false."),
    Field("customRedemptionInfo", "object", nullable=True),
    Field("errorCode", "string", nullable=True, documented={"type": ["string", "integer"]}),
    Field("errorMsg", "string", nullable=True),
)

# --- path parameters and replies ------------------------------------------------------------

CODE_TYPE_PARAM = PathParam(
    name="codeType",
    description="Code type name.",
    schema={"type": "string", "pattern": rules.CODE_TYPE_NAME_PATTERN},
)
SCAN_CODE_PARAM = PathParam(
    name="scanCode",
    description="Any spelling of the scan code.",
    schema={"type": "string", **SCAN_CODE_DOC},
)
JOB_PARAM = PathParam(
    name="jobId", description="Job id.", schema={"type": "string", "format": "uuid"}
)

CODE_RECORD = Reply(status=200, schema="CodeRecord", description="The code record.")
JOB_ACCEPTED = Reply(
    status=202,
    schema="Job",
    description="The job was queued; poll Location.",
    headers=("Location",),
)

# --- error groups ---------------------------------------------------------------------------

# Finding a code by scan code, optionally checked against a code type.
FIND_ERRORS = (
    exc.InvalidScanCodeError,
    exc.CodeNotFoundError,
    exc.CodeTypeNotFoundError,
    exc.CodeTypeMismatchError,
)
# Everything a redeem can answer besides the pipeline's own errors.
REDEEM_ERRORS = (
    *FIND_ERRORS,
    exc.CodeTypeDisabledError,
    exc.NotYetValidError,
    exc.ExpiredError,
    exc.CodeNotActiveError,
    exc.CodeInvalidatedError,
    exc.RedeemedBySelfError,
    exc.RedeemedByOtherError,
    exc.RedemptionInProgressError,
    exc.RedemptionFailedError,
    exc.RedemptionFailedMaxRetriesError,
    exc.AttemptedByMismatchError,
    exc.MaxRedemptionsReachedError,
    exc.ScriptFailureError,
    exc.MaxFailedExceededError,
)
GENERATE_ERRORS = (
    exc.CodeTypeNotFoundError,
    exc.TypeMustBeSingleUseError,
    exc.CodeTypeDisabledError,
    exc.InsufficientCodeSpaceError,
)
