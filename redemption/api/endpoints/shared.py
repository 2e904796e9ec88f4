"""Pieces several endpoints share: input fields, path parameters, replies and error groups."""

from redemption import exceptions as exc
from redemption.api.spec import PathParam, Reply
from redemption.api.validation import CODE_TYPE_PATTERN, INT32_MAX, URL_PATTERN, Field

# --- input fields ---------------------------------------------------------------------------

SCAN_CODE = Field(
    "scanCode",
    "string",
    required=True,
    description="Any spelling: case, spaces and hyphens do not matter; O reads as 0, I and L as 1.",
)
NEW_SCAN_CODE = Field(
    "scanCode", "string", required=True, max=80, description="4-64 letters and digits."
)
CODE_TYPE = Field("codeType", "string", required=True, pattern=CODE_TYPE_PATTERN)
CODE_TYPE_OPTIONAL = Field(
    "codeType",
    "string",
    nullable=True,
    pattern=CODE_TYPE_PATTERN,
    description="When given, the code must belong to this code type.",
)
CUSTOM_CODE_INFO = Field(
    "customCodeInfo", "object", nullable=True, description="Any JSON object up to 16 KB."
)
CUSTOM_REDEMPTION_INFO = Field(
    "customRedemptionInfo", "object", nullable=True, description="Any JSON object up to 16 KB."
)
PROFILE_ID = Field("profileId", "string", required=True, min=1, max=128)
PROFILE_NAME = Field("profileName", "string", nullable=True, max=200)
INITIAL_STATE = Field(
    "codeState", "enum", nullable=True, choices=("Inactive", "Available"), default="Inactive"
)
REDEEM_FIELDS = (SCAN_CODE, CODE_TYPE_OPTIONAL, CUSTOM_REDEMPTION_INFO)
FULFILLMENT = Field(
    "fulfillment",
    "object",
    nullable=True,
    description="Webhook that fulfils each redemption; null for none.",
    inner=(
        Field("url", "string", required=True, max=500, pattern=URL_PATTERN),
        Field("async", "boolean", default=False),
        Field("maxRetries", "integer", min=0, max=10, default=0),
        Field("timeoutSeconds", "integer", min=1, max=86_400, default=30),
    ),
)
CODE_TYPE_SETTINGS = (
    Field("description", "string", nullable=True, max=2000),
    Field("validStart", "datetime", nullable=True),
    Field("validEnd", "datetime", nullable=True),
    Field(
        "maxRedemptions",
        "integer",
        nullable=True,
        min=1,
        max=INT32_MAX,
        description="Shared types only; null for unlimited.",
    ),
    CUSTOM_CODE_INFO,
    Field("isDisabled", "boolean"),
    FULFILLMENT,
)
CODE_TYPE_CREATE_FIELDS = (
    CODE_TYPE,
    Field("codeUseType", "enum", choices=("SINGLE", "MULTI"), default="SINGLE"),
    Field(
        "scanCode",
        "string",
        nullable=True,
        max=80,
        description="The public scan code of a shared (MULTI) type; null for personal types.",
    ),
    *CODE_TYPE_SETTINGS,
)
CODE_TYPE_UPDATE_FIELDS = (
    Field("scanCode", "string", max=80, description="Shared (MULTI) types only."),
    *CODE_TYPE_SETTINGS,
    Field(
        "version",
        "integer",
        min=1,
        max=INT32_MAX,
        description="When given, the update only applies if the code type still has it.",
    ),
)


def generate_fields(max_quantity: int) -> tuple[Field, ...]:
    """The body of a generate request that may ask for up to `max_quantity` codes."""
    return (
        Field("quantity", "integer", required=True, min=1, max=max_quantity),
        INITIAL_STATE,
        CUSTOM_CODE_INFO,
        Field("prefix", "string", nullable=True, max=64),
        Field(
            "algorithmName",
            "enum",
            nullable=True,
            choices=("Crockford", "FiveByFive", "StructuredGuid"),
            default="Crockford",
        ),
        Field(
            "algorithmDetails",
            "object",
            nullable=True,
            inner=(
                Field("length", "integer", min=8, max=32, default=16),
                Field("includeCheck", "boolean", default=False),
            ),
        ),
    )


# Documented here, checked by the service that processes the reply.
ASYNC_REPLY_DOC = (
    Field("success", "boolean", required=True),
    Field("complete", "boolean"),
    Field("customRedemptionInfo", "object", nullable=True),
    Field("errorCode", "string", nullable=True),
    Field("errorMsg", "string", nullable=True),
)

# --- path parameters and replies ------------------------------------------------------------

CODE_TYPE_PARAM = PathParam(name="codeType", description="Code type name.")
SCAN_CODE_PARAM = PathParam(name="scanCode", description="Any spelling of the scan code.")
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
