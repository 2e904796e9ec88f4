"""The product's input rules, each written once: names, lengths, ranges and the webhook URL.

Forms, API fields, URL converters, the OpenAPI document, the models' column widths, the
services and their error messages all read these, so a rule changes in one place. The
predicates answer for any value (False for the wrong kind rather than an exception), so a
service can keep the rules a caller could get wrong with one call each.

A leaf module: it imports nothing from the app.
"""

import json
import math
import re
import sys
from typing import Any, TypeGuard

# Each *_RULE says in words what a value must be; messages are built from them ("must be …").


def whole(regex: str) -> str:
    """A pattern that matches only a whole string, for JSON Schema (ECMA-262) and Python alike.

    Checks here use fullmatch. A pattern handed to others (the OpenAPI document, which
    Python's jsonschema and Hypothesis read with re.search) cannot end in `$`: in Python `$`
    also matches before a trailing line break, so "name\n" would pass. "Not followed by any
    character" means the end of the string in both dialects.
    """
    return rf"^(?:{regex})(?![\s\S])"


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
CODE_TYPE_NAME_PATTERN = whole(CODE_TYPE_NAME_REGEX)  # JSON Schema and ECMA-262 read it too
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
# A scan code as a caller may spell it: ASCII letters (any case) and digits, with spaces, tabs
# and hyphens anywhere; at most SCAN_CODE_WRITTEN_MAX characters in all.
SCAN_CODE_INPUT_REGEX = rf"[ \t-]*(?:[A-Za-z0-9][ \t-]*){{{SCAN_CODE_MIN},{SCAN_CODE_MAX}}}"
_SCAN_CODE_INPUT_RE = re.compile(SCAN_CODE_INPUT_REGEX)


def is_scan_code_input(value: object) -> TypeGuard[str]:
    """True for a scan code spelled as SCAN_CODE_INPUT_REGEX allows (its canonical form is then
    4-64 characters of A-Z and 0-9)."""
    return (
        isinstance(value, str)
        and len(value) <= SCAN_CODE_WRITTEN_MAX
        and _SCAN_CODE_INPUT_RE.fullmatch(value) is not None
    )


def is_canonical_scan_code(value: str) -> bool:
    """True for a canonical scan code of the allowed length."""
    return _CANONICAL_RE.fullmatch(value) is not None


# --- generated codes --------------------------------------------------------------------------

# Crockford codes: the length counts the check character, if any.
CODE_LENGTH_MIN, CODE_LENGTH_MAX, CODE_LENGTH_DEFAULT = 8, 32, 16
PREFIX_MAX = 24  # canonical characters: hyphens are not counted
PREFIX_CANONICAL_REGEX = rf"[A-Z0-9]{{1,{PREFIX_MAX}}}"
PREFIX_WRITTEN_MAX = 64  # as written, hyphens included: the width of the column that keeps it
# The longest code body as written: 32 Crockford characters in groups of 4 (a StructuredGuid
# is 36, FiveByFive 29). A prefix, its hyphen and the body fit SCAN_CODE_WRITTEN_MAX.
CODE_WRITTEN_MAX = CODE_LENGTH_MAX + (CODE_LENGTH_MAX - 1) // 4
PREFIX_INPUT_MAX = SCAN_CODE_WRITTEN_MAX - 1 - CODE_WRITTEN_MAX
PREFIX_RULE = (
    f"1-{PREFIX_MAX} characters of A-Z and 0-9, hyphens allowed, "
    f"at most {PREFIX_INPUT_MAX} characters in all"
)
# As written: empty (no prefix), or hyphens around 1-PREFIX_MAX ASCII letters and digits.
PREFIX_INPUT_REGEX = rf"(?:-*(?:[A-Za-z0-9]-*){{1,{PREFIX_MAX}}})?"
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


# brainCloud apps (SPEC §11): app ids as brainCloud's, secrets of printable ASCII.
WIRE_APP_ID_MAX = 64
WIRE_APP_ID_REGEX = r"[A-Za-z0-9_.-]{1,64}"
WIRE_APP_ID_RULE = "1-64 characters of A-Z a-z 0-9 _ . -"
WIRE_APP_NAME_MAX = 200
WIRE_APP_SECRET_MIN, WIRE_APP_SECRET_MAX = 8, 128
WIRE_APP_SECRET_REGEX = r"[\x21-\x7e]{8,128}"  # noqa: S105 - a pattern, not a secret
WIRE_APP_SECRET_RULE = "8-128 printable ASCII characters, no spaces"  # noqa: S105
WIRE_SESSION_SECONDS_DEFAULT = 1200
WIRE_SESSION_SECONDS_MIN, WIRE_SESSION_SECONDS_MAX = 60, 86400


def is_wire_app_id(value: object) -> TypeGuard[str]:
    """True for a brainCloud app id (WIRE_APP_ID_RULE)."""
    return isinstance(value, str) and re.fullmatch(WIRE_APP_ID_REGEX, value) is not None


def is_wire_app_secret(value: object) -> TypeGuard[str]:
    """True for a brainCloud app secret (WIRE_APP_SECRET_RULE)."""
    return isinstance(value, str) and re.fullmatch(WIRE_APP_SECRET_REGEX, value) is not None


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


# --- JSON every database can store ------------------------------------------------------------

# Deeper JSON is refused before any database or serializer has to recurse through it.
JSON_DEPTH_MAX = 32
STORABLE_TEXT_RULE = "must not contain NUL characters or unpaired surrogates"


def is_storable_text(value: str) -> bool:
    """True when a string can be stored by every supported database (no NUL, valid UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return False
    return True


def json_value_problem(value: Any, depth: int = 1) -> str | None:
    """What keeps a parsed JSON value from being stored as it is, or None when nothing does.

    Refused: nesting deeper than JSON_DEPTH_MAX, text no database stores and numbers that
    are not finite (1e999999 reads as infinity, which JSON cannot write back).
    """
    if depth > JSON_DEPTH_MAX:
        return f"must not nest deeper than {JSON_DEPTH_MAX} levels"
    if isinstance(value, str):
        return None if is_storable_text(value) else STORABLE_TEXT_RULE
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = (
                None if is_storable_text(key) else "keys " + STORABLE_TEXT_RULE
            ) or json_value_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = json_value_problem(item, depth + 1)
            if problem:
                return problem
    return None


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:100]!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_loads_strict(text: str | bytes) -> Any:
    """Parse JSON text; raise ValueError (its message says why) for malformed JSON, duplicate
    keys, NaN/Infinity, whole numbers of more than 4,300 digits and nesting so deep the parser
    gives up. The value may still hold what json_value_problem refuses: check that too.
    """
    try:
        return json.loads(
            text, object_pairs_hook=_pairs_without_duplicates, parse_constant=_no_constant
        )
    except RecursionError:
        raise ValueError(f"must not nest deeper than {JSON_DEPTH_MAX} levels") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        text = str(err).splitlines()[0] if str(err) else "malformed JSON"
        if "integer string conversion" in text:
            text = f"whole numbers may have at most {sys.get_int_max_str_digits():,} digits"
        raise ValueError(text[:200]) from None


# --- text and timestamps ----------------------------------------------------------------------

# Free text (names, descriptions, reasons, profile ids): anything but NUL, which no database
# stores (JSON cannot carry an unpaired surrogate past the body check either).
TEXT_REGEX = r"[^\x00]*"
# Timestamps: RFC 3339 with seconds, optional fraction (up to microseconds) and a zone, in the
# years 1970 to 9998 (so that the UTC time is always representable).
TIMESTAMP_REGEX = (
    r"(?:19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
TIMESTAMP_RULE = "an RFC 3339 timestamp with a time zone (e.g. 2026-12-24T18:00:00Z), 1970-9998"


# --- fulfilment webhooks ----------------------------------------------------------------------

WEBHOOK_URL_MAX = 500
# http or https; a host name (punycode) or IPv4 address that does not start with a dot; an
# optional port 0-65535; then, after / or ?, any printable ASCII. Spelled with explicit
# characters (Python's \s and ECMA-262's differ), and only URLs urlsplit() can take apart.
_HOST = r"(?![.$])[A-Za-z0-9\-._~%!$&'()*+,;=]+"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
WEBHOOK_URL_PATTERN = whole(rf"https?://{_HOST}(?::{_PORT})?(?:[/?][\x21-\x7e]*)?")
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


# --- paged lists ------------------------------------------------------------------------------

# The JSON API's paged lists: `limit` rows a page, `cursor` = the previous page's nextCursor.
PAGE_LIMIT_MIN, PAGE_LIMIT_MAX, PAGE_LIMIT_DEFAULT = 1, 500, 100
# Portal tables: `per_page` is honoured up to this many rows.
PORTAL_PER_PAGE_MAX = 200
# A cursor is signed JSON in URL-safe base64 with ':' separators (opaque to callers).
CURSOR_MAX = 500
CURSOR_REGEX = rf"[A-Za-z0-9_\-:]{{1,{CURSOR_MAX}}}"
CURSOR_PATTERN = whole(CURSOR_REGEX)
CURSOR_RULE = "the nextCursor of the previous page"
_CURSOR_RE = re.compile(CURSOR_REGEX)
SEARCH_MAX = 200


def is_cursor(value: object) -> TypeGuard[str]:
    """True for text shaped like a cursor (whether a list handed it out is checked apart)."""
    return isinstance(value, str) and _CURSOR_RE.fullmatch(value) is not None


def portal_per_page(value: object, default: int) -> int:
    """A portal table's rows per page: `per_page` when it is a whole number, at most
    PORTAL_PER_PAGE_MAX (and at least 1); `default` otherwise."""
    try:
        asked = int(str(value))
    except ValueError:
        return default
    return max(1, min(asked, PORTAL_PER_PAGE_MAX))


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
IDEMPOTENCY_KEY_PATTERN = whole(IDEMPOTENCY_KEY_REGEX)
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
