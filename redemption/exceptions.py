"""The one error hierarchy: every domain error carries its API code, reason code and status."""

from typing import Any, ClassVar

from django.core.exceptions import PermissionDenied


class RedemptionError(Exception):
    """Base of every error the services raise on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    reason_code: ClassVar[int] = 0
    http_status: ClassVar[int] = 500
    default_message: ClassVar[str] = "The request could not be completed."

    def __init__(
        self, message: str | None = None, *, details: dict[str, Any] | None = None
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


def _error(
    name: str, code: str, reason_code: int, http_status: int, message: str
) -> type[RedemptionError]:
    cls = type(
        name,
        (RedemptionError,),
        {
            "code": code,
            "reason_code": reason_code,
            "http_status": http_status,
            "default_message": message,
            "__doc__": message,
        },
    )
    return cls


CodeNotFound = _error(
    "CodeNotFound",
    "REDEMPTION_CODE_NOT_FOUND",
    40395,
    404,
    "No redemption code matches that scan code.",
)
VersionMismatch = _error(
    "VersionMismatch",
    "REDEMPTION_CODE_VERSION_MISMATCH",
    40396,
    409,
    "The code was changed by someone else; reload and try again.",
)
CodeActive = _error(
    "CodeActive", "REDEMPTION_CODE_ACTIVE", 40397, 409, "The code is already active."
)
CodeNotActive = _error(
    "CodeNotActive",
    "REDEMPTION_CODE_NOT_ACTIVE",
    40398,
    409,
    "The code has not been activated yet.",
)
CodeTypeNotFound = _error(
    "CodeTypeNotFound", "REDEMPTION_CODE_TYPE_NOT_FOUND", 40399, 404, "No code type has that name."
)
CodeInvalid = _error(
    "CodeInvalid", "REDEMPTION_CODE_INVALID", 40400, 409, "The code has been invalidated."
)
CodeRedeemed = _error(
    "CodeRedeemed", "REDEMPTION_CODE_REDEEMED", 40401, 409, "The code has already been redeemed."
)
RedeemedBySelf = _error(
    "RedeemedBySelf",
    "REDEMPTION_CODE_REDEEMED_BY_SELF",
    40402,
    409,
    "You have already redeemed this code.",
)
RedeemedByOther = _error(
    "RedeemedByOther",
    "REDEMPTION_CODE_REDEEMED_BY_OTHER",
    40403,
    409,
    "The code has already been redeemed by someone else.",
)
InvalidScanCode = _error(
    "InvalidScanCode",
    "INVALID_SCAN_CODE",
    40569,
    400,
    "That is not a valid scan code; check it for typing mistakes.",
)
InvalidParameter = _error(
    "InvalidParameter", "INVALID_PARAMETER_VALUE", 40660, 400, "Some fields are missing or invalid."
)
RedemptionInProgress = _error(
    "RedemptionInProgress",
    "REDEMPTION_IN_PROGRESS",
    40750,
    409,
    "A redemption of this code is already in progress.",
)
RedemptionFailed = _error(
    "RedemptionFailed",
    "REDEMPTION_FAILED",
    40751,
    409,
    "Fulfilment reported a failure; the redemption did not complete.",
)
RedemptionFailedMaxRetries = _error(
    "RedemptionFailedMaxRetries",
    "REDEMPTION_FAILED_MAX_RETRIES",
    40752,
    409,
    "The redemption failed and no retries are left.",
)
CodeTypeDisabled = _error(
    "CodeTypeDisabled",
    "REDEMPTION_CODE_TYPE_DISABLED",
    40753,
    409,
    "Codes of this type are disabled.",
)
CodeTypeMismatch = _error(
    "CodeTypeMismatch",
    "REDEMPTION_CODE_TYPE_MISMATCH",
    40755,
    409,
    "The code does not belong to that code type.",
)
ScriptFailure = _error(
    "ScriptFailure",
    "REDEMPTION_CODE_SCRIPT_FAILURE",
    40756,
    502,
    "The fulfilment webhook could not be reached or answered badly.",
)
NotInProgress = _error(
    "NotInProgress",
    "REDEMPTION_CODE_NOT_IN_PROGRESS",
    40758,
    409,
    "The redemption is not in progress.",
)
AttemptMismatch = _error(
    "AttemptMismatch",
    "REDEMPTION_CODE_ATTEMPT_MISMATCH",
    40760,
    409,
    "That attempt is not the current attempt.",
)
AsyncBadResponse = _error(
    "AsyncBadResponse",
    "REDEMPTION_CODE_ASYNC_BAD_RESPONSE",
    40761,
    400,
    "The asynchronous response is malformed.",
)
CodeByIdNotFound = _error(
    "CodeByIdNotFound", "REDEMPTION_CODE_BY_ID_NOT_FOUND", 40762, 404, "No redemption has that id."
)
AttemptedByMismatch = _error(
    "AttemptedByMismatch",
    "REDEMPTION_CODE_ATTEMPTED_BY_REDEEMED_BY_MISMATCH",
    40763,
    409,
    "Only the profile that attempted this code may retry it.",
)
MaxFailedExceeded = _error(
    "MaxFailedExceeded",
    "REDEMPTION_CODE_MAX_FAILED_EXCEEDED_FOR_USER",
    40765,
    429,
    "Too many failed redeem attempts; try again later.",
)
TypeNotAsync = _error(
    "TypeNotAsync",
    "REDEMPTION_CODE_TYPE_NOT_ASYNC",
    40767,
    409,
    "The code type does not use asynchronous fulfilment.",
)
AsyncTimeout = _error(
    "AsyncTimeout",
    "REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT",
    40768,
    409,
    "The fulfilment window has passed; the attempt has failed.",
)
NotYetValid = _error(
    "NotYetValid", "REDEMPTION_CODE_NOT_YET_VALID", 40776, 409, "The code cannot be redeemed yet."
)
Expired = _error("Expired", "REDEMPTION_CODE_EXPIRED", 40777, 409, "The code has expired.")
MaxRedemptionsReached = _error(
    "MaxRedemptionsReached",
    "MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED",
    40778,
    409,
    "This shared code has reached its redemption limit.",
)
TypeMustBeSingleUse = _error(
    "TypeMustBeSingleUse",
    "REDEMPTION_CODE_TYPE_MUST_BE_SINGLE_USE",
    40779,
    409,
    "This operation needs a personal (SINGLE) code type.",
)
CodeDuplicate = _error(
    "CodeDuplicate",
    "REDEMPTION_CODE_DUPLICATE",
    40801,
    409,
    "A code with that scan code already exists.",
)
CodeTypeDuplicate = _error(
    "CodeTypeDuplicate",
    "REDEMPTION_CODE_TYPE_DUPLICATE",
    40802,
    409,
    "A code type with that name already exists.",
)
InsufficientCodeSpace = _error(
    "InsufficientCodeSpace",
    "INSUFFICIENT_CODE_SPACE",
    40803,
    400,
    "Too many codes requested for this code shape; use a longer length or another prefix.",
)
AuthenticationRequired = _error(
    "AuthenticationRequired",
    "AUTHENTICATION_REQUIRED",
    40810,
    401,
    "Authentication credentials were not provided.",
)
InvalidCredentials = _error(
    "InvalidCredentials", "INVALID_CREDENTIALS", 40811, 401, "The credentials are invalid."
)
IdempotencyKeyInUse = _error(
    "IdempotencyKeyInUse",
    "IDEMPOTENCY_KEY_IN_USE",
    40820,
    409,
    "A request with this Idempotency-Key is still being processed.",
)
IdempotencyKeyReused = _error(
    "IdempotencyKeyReused",
    "IDEMPOTENCY_KEY_REUSED",
    40821,
    422,
    "This Idempotency-Key was used for a different request.",
)
RequestTooLarge = _error(
    "RequestTooLarge", "REQUEST_TOO_LARGE", 40830, 413, "The request body is too large."
)
MethodNotAllowed = _error(
    "MethodNotAllowed", "METHOD_NOT_ALLOWED", 40831, 405, "That method is not allowed here."
)
ServiceUnavailable = _error(
    "ServiceUnavailable",
    "SERVICE_UNAVAILABLE",
    40832,
    503,
    "The service is temporarily unavailable.",
)


class PermissionDeniedError(RedemptionError, PermissionDenied):
    """The caller may not do this."""

    code = "PERMISSION_DENIED"
    reason_code = 40812
    http_status = 403
    default_message = "You do not have permission to do that."


def invalid_fields(fields: dict[str, str], message: str | None = None) -> RedemptionError:
    """Build an INVALID_PARAMETER_VALUE error naming each bad field."""
    return InvalidParameter(message, details={"fields": fields})


ALL_ERRORS: tuple[type[RedemptionError], ...] = tuple(
    {
        cls.code: cls
        for cls in [*RedemptionError.__subclasses__()]
        if cls.code != RedemptionError.code
    }.values()
)
