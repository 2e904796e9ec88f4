"""The product's input rules, each written once: names, lengths, ranges and the webhook URL.

Forms, API fields, URL converters, the OpenAPI document, the models' column widths, the
services and their error messages all read these, so a rule changes in one place. The
predicates answer for any value (False for the wrong kind rather than an exception), so a
service can keep the rules a caller could get wrong with one call each.

A leaf module: it imports nothing from the app.
"""

import json
import re
from typing import Any, TypeGuard

# Each *_RULE says in words what a value must be; messages are built from them ("must be …").

# --- numbers ----------------------------------------------------------------------------------

# The largest value an integer column holds on every supported database.
INT32_MAX = 2_147_483_647


def is_whole_number(value: object) -> TypeGuard[int]:
    """True for an int that is not a bool (JSON's true is not the number 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_whole_number_in(value: object, low: int, high: int) -> TypeGuard[int]:
    """True for a whole number from `low` to `high`, both included."""
    return is_whole_number(value) and low <= value <= high


def whole_number_rule(low: int, high: int) -> str:
    """How a whole-number range reads in an error message."""
    return f"a whole number from {low:,} to {high:,}"


def length_rule(low: int, high: int) -> str:
    """How a text field's length range reads in an error message or help text."""
    return f"{low}-{high} characters"


def is_text_of(value: object, low: int, high: int) -> TypeGuard[str]:
    """True for a string of `low` to `high` characters."""
    return isinstance(value, str) and low <= len(value) <= high


# --- code type names --------------------------------------------------------------------------

CODE_TYPE_NAME_MAX = 64  # also the width of every column that stores a code type's name
_NAME_CHARACTER = r"[A-Za-z0-9_.\-]"
# Unanchored, for URL converters (Django anchors those itself). The lookahead refuses names
# made only of dots ("." and ".."): browsers rewrite such path segments, so the type's pages
# could never be reached.
CODE_TYPE_NAME_REGEX = rf"(?=\.*[A-Za-z0-9_\-]){_NAME_CHARACTER}{{1,{CODE_TYPE_NAME_MAX}}}"
CODE_TYPE_NAME_PATTERN = f"^{CODE_TYPE_NAME_REGEX}$"  # JSON Schema and ECMA-262 read it too
CODE_TYPE_NAME_RULE = f"1-{CODE_TYPE_NAME_MAX} characters of A-Z a-z 0-9 _ . - (not only dots)"
_CODE_TYPE_NAME_RE = re.compile(CODE_TYPE_NAME_REGEX)


def is_code_type_name(value: object) -> TypeGuard[str]:
    """True for a name a code type may have."""
    return isinstance(value, str) and _CODE_TYPE_NAME_RE.fullmatch(value) is not None


# --- scan codes -------------------------------------------------------------------------------

# The canonical form (what uniqueness and look-ups use): letters and digits only.
SCAN_CODE_MIN, SCAN_CODE_MAX = 4, 64
SCAN_CODE_CANONICAL_REGEX = rf"[A-Z0-9]{{{SCAN_CODE_MIN},{SCAN_CODE_MAX}}}"
# As written, with its spaces and hyphens: the width of the column that keeps it.
SCAN_CODE_WRITTEN_MAX = 80
SCAN_CODE_RULE = (
    f"{SCAN_CODE_MIN}-{SCAN_CODE_MAX} letters and digits (spaces and hyphens are ignored)"
)
SCAN_CODE_FIELD_RULE = f"{SCAN_CODE_MIN}-{SCAN_CODE_MAX} characters of A-Z and 0-9"
_CANONICAL_RE = re.compile(SCAN_CODE_CANONICAL_REGEX)


def is_canonical_scan_code(value: str) -> bool:
    """True for a canonical scan code of the allowed length."""
    return _CANONICAL_RE.fullmatch(value) is not None


# --- generated codes --------------------------------------------------------------------------

# Crockford codes: the length counts the check character, if any.
CODE_LENGTH_MIN, CODE_LENGTH_MAX, CODE_LENGTH_DEFAULT = 8, 32, 16
PREFIX_MAX = 24  # canonical characters: hyphens are not counted
PREFIX_CANONICAL_REGEX = rf"[A-Z0-9]{{1,{PREFIX_MAX}}}"
PREFIX_RULE = f"1-{PREFIX_MAX} characters of A-Z and 0-9 (hyphens allowed)"
PREFIX_WRITTEN_MAX = 64  # as written, hyphens included: the width of the column that keeps it
QUANTITY_MIN = 1
INLINE_QUANTITY_MAX = 1_000  # answered in the response body, so it must stay small
JOB_QUANTITY_MAX = 10_000_000


# --- profiles and user tokens -----------------------------------------------------------------

PROFILE_ID_MIN, PROFILE_ID_MAX = 1, 128
PROFILE_NAME_MAX = 200
PROFILE_ID_RULE = length_rule(PROFILE_ID_MIN, PROFILE_ID_MAX)
PROFILE_NAME_RULE = f"at most {PROFILE_NAME_MAX} characters"
# A user token cannot be revoked, only left to expire: it lives a minute to a day.
USER_TOKEN_TTL_MIN, USER_TOKEN_TTL_MAX, USER_TOKEN_TTL_DEFAULT = 60, 86_400, 3_600


def is_profile_id(value: object) -> TypeGuard[str]:
    """True for a profile id of PROFILE_ID_MIN to PROFILE_ID_MAX characters."""
    return is_text_of(value, PROFILE_ID_MIN, PROFILE_ID_MAX)


def is_profile_name(value: object) -> bool:
    """True for None (no name) or a name of at most PROFILE_NAME_MAX characters."""
    return value is None or is_text_of(value, 0, PROFILE_NAME_MAX)


# --- code types and codes ---------------------------------------------------------------------

DESCRIPTION_MAX = 2_000
MAX_REDEMPTIONS_MIN = 1  # a type that takes no redemptions at all is disabled (isDisabled)
INVALIDATION_REASON_MAX = 1_000
INVALIDATION_REASON_RULE = f"text of at most {INVALIDATION_REASON_MAX:,} characters"

# customCodeInfo and customRedemptionInfo: free-form JSON objects of at most this many bytes
# of compact JSON (non-ASCII written as \uXXXX).
JSON_OBJECT_MAX_BYTES = 16 * 1024
JSON_OBJECT_SIZE = f"{JSON_OBJECT_MAX_BYTES // 1024} KB"
JSON_OBJECT_RULE = f"at most {JSON_OBJECT_SIZE} of JSON"


def compact_json(value: Any) -> str:
    """The compact JSON text whose size JSON_OBJECT_MAX_BYTES limits."""
    return json.dumps(value, separators=(",", ":"))


def json_fits(text: str) -> bool:
    """True when compact JSON text is within JSON_OBJECT_MAX_BYTES."""
    return len(text.encode()) <= JSON_OBJECT_MAX_BYTES


# --- fulfilment webhooks ----------------------------------------------------------------------

WEBHOOK_URL_MAX = 500
# http or https, a host that does not start with a dot or a separator, no whitespace.
WEBHOOK_URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
WEBHOOK_URL_RULE = f"an http(s) URL of at most {WEBHOOK_URL_MAX} characters"
WEBHOOK_RETRIES_MIN, WEBHOOK_RETRIES_MAX, WEBHOOK_RETRIES_DEFAULT = 0, 10, 0
WEBHOOK_TIMEOUT_MIN, WEBHOOK_TIMEOUT_MAX, WEBHOOK_TIMEOUT_DEFAULT = 1, 86_400, 30
_WEBHOOK_URL_RE = re.compile(WEBHOOK_URL_PATTERN)


def is_webhook_url(value: object) -> TypeGuard[str]:
    """True for a URL a fulfilment webhook may have."""
    return (
        isinstance(value, str)
        and len(value) <= WEBHOOK_URL_MAX
        and _WEBHOOK_URL_RE.fullmatch(value) is not None
    )


# --- credentials and request headers ----------------------------------------------------------

SERVER_KEY_NAME_MAX = 100
SERVER_KEY_NAME_RULE = length_rule(1, SERVER_KEY_NAME_MAX)
# What a server key may call (SPEC §13 lists the operations each one opens). A new key holds
# every scope unless it is given fewer.
SCOPE_REDEEM = "redeem"
SCOPE_USER_TOKENS = "user-tokens"
SCOPE_CODES_READ = "codes:read"
SCOPE_CODES_WRITE = "codes:write"
SCOPE_CODE_TYPES_WRITE = "code-types:write"
SCOPE_JOBS = "jobs"
SCOPE_FULFILMENT = "fulfilment"
SCOPE_WIRE_S2S = "wire-s2s"
SERVER_KEY_SCOPES: tuple[str, ...] = (
    SCOPE_REDEEM,
    SCOPE_USER_TOKENS,
    SCOPE_CODES_READ,
    SCOPE_CODES_WRITE,
    SCOPE_CODE_TYPES_WRITE,
    SCOPE_JOBS,
    SCOPE_FULFILMENT,
    SCOPE_WIRE_S2S,
)
SERVER_KEY_SCOPES_RULE = "one or more of " + ", ".join(SERVER_KEY_SCOPES)
SERVER_KEY_EXPIRY_DAYS_MIN, SERVER_KEY_EXPIRY_DAYS_MAX = 1, 3_650
IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_KEY_REGEX = rf"[\x20-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}"
IDEMPOTENCY_KEY_RULE = f"1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters"


def is_server_key_name(value: object) -> TypeGuard[str]:
    """True for a name that is not blank and has at most SERVER_KEY_NAME_MAX characters."""
    return is_text_of(value, 1, SERVER_KEY_NAME_MAX) and bool(value.strip())


# An incoming X-Request-Id is kept when it is this; anything else is replaced by a fresh id.
REQUEST_ID_MAX = 64
REQUEST_ID_REGEX = rf"[A-Za-z0-9._\-]{{1,{REQUEST_ID_MAX}}}"
_REQUEST_ID_RE = re.compile(REQUEST_ID_REGEX)


def is_request_id(value: object) -> TypeGuard[str]:
    """True for a request id a caller may choose: 1-64 characters of A-Z a-z 0-9 . _ -."""
    return isinstance(value, str) and _REQUEST_ID_RE.fullmatch(value) is not None


# --- staff sign-in, second factor, live codes ---------------------------------------------------

# A sign-in counter's key: "account:" and the user name as typed (cut to this many characters,
# lower case) or "ip:" and the client address (an IPv6 /64 at most 43 characters).
SIGN_IN_USERNAME_COUNTED_MAX = 150
SIGN_IN_COUNTER_KEY_MAX = 200
# After a right password, the one-time code of an account with a second factor is asked for
# on a second page; the half-done sign-in is forgotten after this many seconds.
SIGN_IN_SECOND_STEP_SECONDS = 300
TOTP_DIGITS = 6
RECOVERY_CODE_COUNT = 10
# A live personal code as a Viewer sees it: the first and last MASK_KEEP characters of its
# display form (MASK_KEEP_SHORT when it has fewer than MASK_SHORT_BELOW), the rest MASK_CHAR;
# separators (hyphens, spaces) stay where they are.
MASK_KEEP, MASK_KEEP_SHORT, MASK_SHORT_BELOW = 4, 2, 12
MASK_CHAR = "•"
