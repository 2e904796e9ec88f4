"""Scan codes: canonical form, generation algorithms and the check character (pure functions)."""

import base64
import re
import secrets
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from redemption import exceptions as exc
from redemption import rules

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_PREFIX_RE = re.compile(rules.PREFIX_CANONICAL_REGEX)
_PREFIX_INPUT_RE = re.compile(rules.PREFIX_INPUT_REGEX)
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)
_STRIP = str.maketrans({" ": None, "\t": None, "-": None, "O": "0", "I": "1", "L": "1"})
# The same mapping for ASCII text, uppercasing included: bytes.translate is ten times faster
# than str.translate with a dict, and a bulk import canonicalises every line.
_ASCII_CANONICAL = bytes.maketrans(
    string.ascii_letters.encode(),
    (string.ascii_uppercase * 2).translate(_STRIP).encode(),
)
_ASCII_IGNORED = b" \t-"

ALGORITHMS = ("Crockford", "FiveByFive", "StructuredGuid")
DEFAULT_ALGORITHM = "Crockford"
SPACE_SAFETY_FACTOR = 1000


def canonical(raw: str) -> str:
    """Return the canonical form used for uniqueness and lookups (not yet validated)."""
    if raw.isascii():
        return raw.encode("ascii").translate(_ASCII_CANONICAL, _ASCII_IGNORED).decode("ascii")
    return raw.upper().translate(_STRIP)


def display(raw: str) -> str:
    """Return the display form: uppercase, as typed, surrounding blanks removed."""
    return raw.strip().upper()


def canonical_or_none(scan_code: str) -> str | None:
    """Return the canonical form of a scan code, or None if it is no valid scan code.

    Only ASCII letters and digits count (with spaces, tabs and hyphens anywhere): "ß".upper()
    is "SS", and a code must not be found under a spelling nobody wrote.
    """
    # The test of rules.is_scan_code_input, without its regex: ASCII only, at most
    # SCAN_CODE_WRITTEN_MAX characters, and SCAN_CODE_MIN-SCAN_CODE_MAX letters and digits
    # once the blanks and hyphens are gone (bytes.isalnum knows ASCII only).
    if (
        not isinstance(scan_code, str)
        or len(scan_code) > rules.SCAN_CODE_WRITTEN_MAX
        or not scan_code.isascii()
    ):
        return None
    canon = scan_code.encode("ascii").translate(_ASCII_CANONICAL, _ASCII_IGNORED)
    if not rules.SCAN_CODE_MIN <= len(canon) <= rules.SCAN_CODE_MAX or not canon.isalnum():
        return None
    return canon.decode("ascii")


def canonical_or_error(scan_code: str, *, field: str = "scanCode") -> str:
    """Return the canonical form of a scan code, or raise INVALID_SCAN_CODE if it has none."""
    canon = canonical_or_none(scan_code)
    if canon is None:
        raise exc.InvalidScanCodeError(
            f"A scan code is {rules.SCAN_CODE_RULE}, "
            f"at most {rules.SCAN_CODE_WRITTEN_MAX} characters as written.",
            details={"fields": {field: rules.SCAN_CODE_FIELD_RULE}},
        )
    return canon


def check_character(payload: str) -> str:
    """Return the Luhn mod 32 check character for a payload drawn from ALPHABET."""
    factor, total, n = 2, 0, len(ALPHABET)
    for ch in reversed(payload):
        addend = factor * _INDEX[ch]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def has_valid_check(payload_with_check: str) -> bool:
    """Tell whether the last character is the right check character for the rest."""
    if len(payload_with_check) < 2 or any(ch not in _INDEX for ch in payload_with_check):
        return False
    return check_character(payload_with_check[:-1]) == payload_with_check[-1]


@dataclass(frozen=True)
class CodeShape:
    """What a batch's codes look like: enough to generate more and to recognise typos."""

    algorithm: str = DEFAULT_ALGORITHM
    length: int = rules.CODE_LENGTH_DEFAULT
    prefix: str = ""
    include_check: bool = False

    @property
    def random_length(self) -> int:
        """Characters drawn at random (the check character, if any, is not random)."""
        return self.length - (1 if self.include_check else 0)

    @property
    def prefix_canonical(self) -> str:
        return canonical(self.prefix)

    @property
    def space(self) -> int:
        """How many distinct codes this shape can produce."""
        if self.algorithm == "StructuredGuid":
            return 2**122
        return len(ALPHABET) ** self.random_length

    def matches(self, canonical_code: str) -> bool:
        """Tell whether a canonical code has this shape (random part from the alphabet)."""
        if self.algorithm == "StructuredGuid":
            return False
        head = self.prefix_canonical
        if not canonical_code.startswith(head):
            return False
        body = canonical_code[len(head) :]
        return len(body) == self.length and all(ch in _INDEX for ch in body)

    def check_fails(self, canonical_code: str) -> bool:
        """True when the code has this shape, carries a check character, and it is wrong."""
        if not self.include_check or not self.matches(canonical_code):
            return False
        return not has_valid_check(canonical_code[len(self.prefix_canonical) :])


def make_shape(
    *, algorithm: str | None, length: int | None, prefix: str | None, include_check: bool
) -> CodeShape:
    """Validate generation options and return the shape; raise ValueError naming the field."""
    algorithm = algorithm or DEFAULT_ALGORITHM
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithmName: must be one of {', '.join(ALGORITHMS)}")
    if len(prefix or "") > rules.PREFIX_INPUT_MAX or not _PREFIX_INPUT_RE.fullmatch(prefix or ""):
        raise ValueError(f"prefix: {rules.PREFIX_RULE}")
    prefix = display(prefix or "")
    if prefix:
        pc = canonical(prefix)
        if not _PREFIX_RE.fullmatch(pc) or len(pc) != len(prefix.replace("-", "")):
            raise ValueError(f"prefix: {rules.PREFIX_RULE}")
    if algorithm == "FiveByFive":
        length = 25
    elif algorithm == "StructuredGuid":
        if include_check:
            raise ValueError("algorithmDetails.includeCheck: not available for StructuredGuid")
        length = 32
    else:
        length = rules.CODE_LENGTH_DEFAULT if length is None else length
        if not rules.CODE_LENGTH_MIN <= length <= rules.CODE_LENGTH_MAX:
            raise ValueError(
                f"length: must be between {rules.CODE_LENGTH_MIN} and {rules.CODE_LENGTH_MAX}"
            )
    shape = CodeShape(
        algorithm=algorithm, length=length, prefix=prefix, include_check=include_check
    )
    if len(shape.prefix_canonical) + length > rules.SCAN_CODE_MAX:
        raise ValueError(
            f"prefix: prefix plus code may not exceed {rules.SCAN_CODE_MAX} characters"
        )
    return shape


def feasible(shape: CodeShape, *, quantity: int, already_issued: int) -> bool:
    """Refuse a request that would use more than 1/1000 of the remaining code space."""
    remaining = shape.space - already_issued
    return quantity * SPACE_SAFETY_FACTOR <= remaining


def random_chars(count: int) -> str:
    """Return `count` uniformly random ALPHABET characters (5 random bits each)."""
    raw = base64.b32encode(secrets.token_bytes((count * 5 + 7) // 8)).decode("ascii")
    return raw[:count].translate(_FROM_RFC4648)


def generate_one(shape: CodeShape) -> tuple[str, str]:
    """Return (display, canonical) for one fresh random code of the given shape."""
    return next(generate(shape, 1))


def generate(shape: CodeShape, quantity: int) -> Iterator[tuple[str, str]]:
    """Yield `quantity` random codes; uniqueness is the database's job (insert and top up).

    Random characters are drawn for the whole run at once: one call per code was most of
    the Python time of a million-code job.
    """
    if shape.algorithm == "StructuredGuid":
        for _ in range(quantity):
            body = str(uuid.uuid4()).upper()
            yield _with_prefix(shape, body, body.replace("-", ""))
        return
    size = shape.random_length
    group = 5 if shape.algorithm == "FiveByFive" else 4
    pool = random_chars(size * quantity)
    for start in range(0, size * quantity, size):
        body = pool[start : start + size]
        if shape.include_check:
            body += check_character(body)
        display = "-".join([body[i : i + group] for i in range(0, len(body), group)])
        yield _with_prefix(shape, display, body)


def _with_prefix(shape: CodeShape, body_display: str, body_canonical: str) -> tuple[str, str]:
    if shape.prefix:
        return f"{shape.prefix}-{body_display}", shape.prefix_canonical + body_canonical
    return body_display, body_canonical
