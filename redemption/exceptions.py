"""The one error hierarchy: every domain error carries its API code, reason code and status.

Each error is a class below; the API maps them to its JSON envelope in one place
(`redemption.api.errors`), the portal turns them into messages. `all_errors()` is the
catalogue, built from the classes themselves.
"""

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


class InternalError(RedemptionError):
    """Anything the service did not expect; the details stay in the server log."""


class CodeNotFoundError(RedemptionError):
    """No redemption code matches that scan code."""

    code, reason_code, http_status = "REDEMPTION_CODE_NOT_FOUND", 40395, 404
    default_message = "No redemption code matches that scan code."


class VersionMismatchError(RedemptionError):
    """The code was changed by someone else; reload and try again."""

    code, reason_code, http_status = "REDEMPTION_CODE_VERSION_MISMATCH", 40396, 409
    default_message = "The code was changed by someone else; reload and try again."


class CodeActiveError(RedemptionError):
    """The code is already active."""

    code, reason_code, http_status = "REDEMPTION_CODE_ACTIVE", 40397, 409
    default_message = "The code is already active."


class CodeNotActiveError(RedemptionError):
    """The code has not been activated yet."""

    code, reason_code, http_status = "REDEMPTION_CODE_NOT_ACTIVE", 40398, 409
    default_message = "The code has not been activated yet."


class CodeTypeNotFoundError(RedemptionError):
    """No code type has that name."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_NOT_FOUND", 40399, 404
    default_message = "No code type has that name."


class CodeInvalidatedError(RedemptionError):
    """The code has been invalidated."""

    code, reason_code, http_status = "REDEMPTION_CODE_INVALID", 40400, 409
    default_message = "The code has been invalidated."


class CodeRedeemedError(RedemptionError):
    """The code has already been redeemed."""

    code, reason_code, http_status = "REDEMPTION_CODE_REDEEMED", 40401, 409
    default_message = "The code has already been redeemed."


class RedeemedBySelfError(RedemptionError):
    """The profile already redeemed this code; the error carries that record."""

    code, reason_code, http_status = "REDEMPTION_CODE_REDEEMED_BY_SELF", 40402, 409
    default_message = "You have already redeemed this code."

    def __init__(self, record: Any = None, message: str | None = None) -> None:
        super().__init__(message)
        self.record = record


class RedeemedByOtherError(RedemptionError):
    """The code has already been redeemed by someone else."""

    code, reason_code, http_status = "REDEMPTION_CODE_REDEEMED_BY_OTHER", 40403, 409
    default_message = "The code has already been redeemed by someone else."


class InvalidScanCodeError(RedemptionError):
    """That is not a valid scan code; check it for typing mistakes."""

    code, reason_code, http_status = "INVALID_SCAN_CODE", 40569, 400
    default_message = "That is not a valid scan code; check it for typing mistakes."


class InvalidParameterError(RedemptionError):
    """Some input fields are missing or invalid; `details.fields` names each one."""

    code, reason_code, http_status = "INVALID_PARAMETER_VALUE", 40660, 400
    default_message = "Some fields are missing or invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if fields is not None:
            merged["fields"] = dict(fields)
        super().__init__(message, details=merged)
        self.fields: dict[str, str] = dict(merged.get("fields") or {})


class RedemptionInProgressError(RedemptionError):
    """A redemption of this code is already in progress."""

    code, reason_code, http_status = "REDEMPTION_IN_PROGRESS", 40750, 409
    default_message = "A redemption of this code is already in progress."


class RedemptionFailedError(RedemptionError):
    """Fulfilment reported a failure; the redemption did not complete."""

    code, reason_code, http_status = "REDEMPTION_FAILED", 40751, 409
    default_message = "Fulfilment reported a failure; the redemption did not complete."


class RedemptionFailedMaxRetriesError(RedemptionError):
    """The redemption failed and no retries are left."""

    code, reason_code, http_status = "REDEMPTION_FAILED_MAX_RETRIES", 40752, 409
    default_message = "The redemption failed and no retries are left."


class CodeTypeDisabledError(RedemptionError):
    """Codes of this type are disabled."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_DISABLED", 40753, 409
    default_message = "Codes of this type are disabled."


class CodeTypeMismatchError(RedemptionError):
    """The code does not belong to that code type."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_MISMATCH", 40755, 409
    default_message = "The code does not belong to that code type."


class ScriptFailureError(RedemptionError):
    """The fulfilment webhook could not be reached or answered badly."""

    code, reason_code, http_status = "REDEMPTION_CODE_SCRIPT_FAILURE", 40756, 502
    default_message = "The fulfilment webhook could not be reached or answered badly."


class NotInProgressError(RedemptionError):
    """The redemption is not in progress."""

    code, reason_code, http_status = "REDEMPTION_CODE_NOT_IN_PROGRESS", 40758, 409
    default_message = "The redemption is not in progress."


class AttemptMismatchError(RedemptionError):
    """That attempt is not the current attempt."""

    code, reason_code, http_status = "REDEMPTION_CODE_ATTEMPT_MISMATCH", 40760, 409
    default_message = "That attempt is not the current attempt."


class AsyncBadResponseError(RedemptionError):
    """The asynchronous response is malformed."""

    code, reason_code, http_status = "REDEMPTION_CODE_ASYNC_BAD_RESPONSE", 40761, 400
    default_message = "The asynchronous response is malformed."


class CodeByIdNotFoundError(RedemptionError):
    """No redemption has that id."""

    code, reason_code, http_status = "REDEMPTION_CODE_BY_ID_NOT_FOUND", 40762, 404
    default_message = "No redemption has that id."


class AttemptedByMismatchError(RedemptionError):
    """Only the profile that attempted this code may retry it."""

    code, reason_code, http_status = "REDEMPTION_CODE_ATTEMPTED_BY_REDEEMED_BY_MISMATCH", 40763, 409
    default_message = "Only the profile that attempted this code may retry it."


class MaxFailedExceededError(RedemptionError):
    """Too many failed redeem attempts; try again later."""

    code, reason_code, http_status = "REDEMPTION_CODE_MAX_FAILED_EXCEEDED_FOR_USER", 40765, 429
    default_message = "Too many failed redeem attempts; try again later."


class TypeNotAsyncError(RedemptionError):
    """The code type does not use asynchronous fulfilment."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_NOT_ASYNC", 40767, 409
    default_message = "The code type does not use asynchronous fulfilment."


class AsyncTimeoutError(RedemptionError):
    """The fulfilment window has passed; the attempt has failed."""

    code, reason_code, http_status = "REDEMPTION_CODE_ASYNC_PROCESSING_TIMEOUT", 40768, 409
    default_message = "The fulfilment window has passed; the attempt has failed."


class NotYetValidError(RedemptionError):
    """The code cannot be redeemed yet."""

    code, reason_code, http_status = "REDEMPTION_CODE_NOT_YET_VALID", 40776, 409
    default_message = "The code cannot be redeemed yet."


class ExpiredError(RedemptionError):
    """The code has expired."""

    code, reason_code, http_status = "REDEMPTION_CODE_EXPIRED", 40777, 409
    default_message = "The code has expired."


class MaxRedemptionsReachedError(RedemptionError):
    """This shared code has reached its redemption limit."""

    code, reason_code, http_status = "MULTI_USE_CODE_MAX_REDEMPTIONS_REACHED", 40778, 409
    default_message = "This shared code has reached its redemption limit."


class CodeUseTypeError(RedemptionError):
    """The operation needs the other use type (e.g. a scan code for a personal code type)."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_CODE_USE_ERROR", 40775, 409
    default_message = "That needs a code type of the other use type (SINGLE or MULTI)."


class TypeMustBeSingleUseError(RedemptionError):
    """This operation needs a personal (SINGLE) code type."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_MUST_BE_SINGLE_USE", 40779, 409
    default_message = "This operation needs a personal (SINGLE) code type."


class CodeDuplicateError(RedemptionError):
    """A code with that scan code already exists."""

    code, reason_code, http_status = "REDEMPTION_CODE_DUPLICATE", 40801, 409
    default_message = "A code with that scan code already exists."


class CodeTypeDuplicateError(RedemptionError):
    """A code type with that name already exists."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_DUPLICATE", 40802, 409
    default_message = "A code type with that name already exists."


class InsufficientCodeSpaceError(RedemptionError):
    """Too many codes requested for this code shape; use a longer length or another prefix."""

    code, reason_code, http_status = "INSUFFICIENT_CODE_SPACE", 40803, 400
    default_message = (
        "Too many codes requested for this code shape; use a longer length or another prefix."
    )


class AuthenticationRequiredError(RedemptionError):
    """Authentication credentials were not provided."""

    code, reason_code, http_status = "AUTHENTICATION_REQUIRED", 40810, 401
    default_message = "Authentication credentials were not provided."


class InvalidCredentialsError(RedemptionError):
    """The credentials are invalid."""

    code, reason_code, http_status = "INVALID_CREDENTIALS", 40811, 401
    default_message = "The credentials are invalid."


class IdempotencyKeyInUseError(RedemptionError):
    """A request with this Idempotency-Key is still being processed."""

    code, reason_code, http_status = "IDEMPOTENCY_KEY_IN_USE", 40820, 409
    default_message = "A request with this Idempotency-Key is still being processed."


class IdempotencyKeyReusedError(RedemptionError):
    """This Idempotency-Key was used for a different request."""

    code, reason_code, http_status = "IDEMPOTENCY_KEY_REUSED", 40821, 422
    default_message = "This Idempotency-Key was used for a different request."


class RequestTooLargeError(RedemptionError):
    """The request body is too large."""

    code, reason_code, http_status = "REQUEST_TOO_LARGE", 40830, 413
    default_message = "The request body is too large."


class MethodNotAllowedError(RedemptionError):
    """That method is not allowed here."""

    code, reason_code, http_status = "METHOD_NOT_ALLOWED", 40831, 405
    default_message = "That method is not allowed here."


class ServiceUnavailableError(RedemptionError):
    """The service is temporarily unavailable."""

    code, reason_code, http_status = "SERVICE_UNAVAILABLE", 40832, 503
    default_message = "The service is temporarily unavailable."


class ValidityWindowError(RedemptionError):
    """validEnd is not later than validStart (as given, or with the bound the type has)."""

    code, reason_code, http_status = "REDEMPTION_CODE_TYPE_WINDOW_EMPTY", 40834, 409
    default_message = "validEnd must be later than validStart: the window would be empty."


class JobNotFoundError(RedemptionError):
    """No job has that id (or it has nothing to download)."""

    code, reason_code, http_status = "JOB_NOT_FOUND", 40804, 404
    default_message = "No job has that id."


class PathNotFoundError(RedemptionError):
    """No API endpoint lives at this path."""

    code, reason_code, http_status = "NOT_FOUND", 40404, 404
    default_message = "There is no API endpoint at this path."


class PermissionDeniedError(RedemptionError, PermissionDenied):
    """The caller may not do this."""

    code, reason_code, http_status = "PERMISSION_DENIED", 40812, 403
    default_message = "You do not have permission to do that."


class InsufficientScopeError(PermissionDeniedError):
    """The server key does not hold the scope this operation needs."""

    code, reason_code, http_status = "INSUFFICIENT_SCOPE", 40813, 403
    default_message = "This server key does not hold the scope this operation needs."


class FulfillmentUrlForbiddenError(RedemptionError):
    """The webhook URL points somewhere the portal must not call; `details.fields` says why."""

    code, reason_code, http_status = "FULFILLMENT_URL_FORBIDDEN", 40833, 400
    default_message = (
        "The fulfilment URL is not allowed: it must be https and its host must resolve only to "
        "public addresses."
    )


class WireBadSignatureError(RedemptionError):
    """A brainCloud packet's X-SIG is missing or wrong, or X-APPID names no enabled app."""

    code, reason_code, http_status = "WIRE_BAD_SIGNATURE", 40840, 403
    default_message = "The packet signature is missing or wrong, or the app is unknown."


class WireAuthTypeNotAllowedError(RedemptionError):
    """The brainCloud app does not allow that authentication type."""

    code, reason_code, http_status = "WIRE_AUTH_TYPE_NOT_ALLOWED", 40841, 403
    default_message = "This authentication type is not enabled for the app."


class WireUnknownOperationError(RedemptionError):
    """The brainCloud service/operation is not offered here."""

    code, reason_code, http_status = "WIRE_UNKNOWN_OPERATION", 40842, 400
    default_message = "That service and operation are not offered."


class WireBadCredentialsError(RedemptionError):
    """The External token is invalid, expired, revoked or for another profile."""

    code, reason_code, http_status = "WIRE_BAD_CREDENTIALS", 40843, 403
    default_message = "The authentication token is invalid, expired or revoked."


class JobLeaseLostError(Exception):
    """This worker no longer holds the job's lease: another worker took it over. Stop quietly.

    Not a RedemptionError: nobody outside the worker ever sees it.
    """


def invalid_fields(fields: dict[str, str], message: str | None = None) -> InvalidParameterError:
    """Build an INVALID_PARAMETER_VALUE error naming each bad field."""
    return InvalidParameterError(message, fields=fields)


def minting_key_dead() -> InvalidCredentialsError:
    """The error for a user token whose minting server key was revoked or has expired."""
    return InvalidCredentialsError(
        "The server key that minted this user token was revoked or has expired."
    )


def all_errors() -> tuple[type[RedemptionError], ...]:
    """Every concrete error class, one per code, in reason-code order."""
    found: dict[str, type[RedemptionError]] = {}
    pending = list(RedemptionError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.setdefault(cls.code, cls)
    return tuple(sorted(found.values(), key=lambda cls: (cls.reason_code, cls.code)))


ALL_ERRORS: tuple[type[RedemptionError], ...] = all_errors()
