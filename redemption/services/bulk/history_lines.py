"""Parse the lines of a migration import (`preserveState`): codes with their history.

The file needs a header row naming its columns (an export of this product re-imports as it
is). Pure functions: header and line text in, a parsed line or the line's error out; no
database. Duplicates and caps are judged by the import, which sees the file and the database.
"""

import csv
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.utils.dateparse import parse_datetime

from redemption import codes, rules
from redemption import exceptions as exc
from redemption.csv_out import unmark
from redemption.models import SHARED_TRANSITIONS, STATE_ORDER, State
from redemption.services.bulk.csv_lines import LineError, shown_scan_code

# Column names as the export writes them; a few spellings a hand-made file may use map to them.
COLUMNS = frozenset(
    {
        "scanCode",
        "codeState",
        "customCodeInfo",
        "customRedemptionInfo",
        "redeemedByProfileId",
        "redeemedByProfileName",
        "redeemedAt",
        "invalidationReason",
        "createdAt",
        "activatedAt",
        "invalidatedAt",
    }
)
# Written by the export, not imported: the type is the one imported into, the batch is new.
IGNORED_COLUMNS = frozenset({"codeType", "batchId", "updatedAt", "version", "redemptionCodeId"})
ALIASES = {"profileId": "redeemedByProfileId", "profileName": "redeemedByProfileName"}
_BY_LOWER = {name.lower(): name for name in (*COLUMNS, *IGNORED_COLUMNS)} | {
    alias.lower(): name for alias, name in ALIASES.items()
}
_STATE_NAMES = {s.lower(): s for s in STATE_ORDER}
SHARED_STATES = frozenset(SHARED_TRANSITIONS)
# States a personal code holds only for a profile (who redeemed it, or whose attempt it is).
_PROFILE_STATES = frozenset({State.REDEEMED, State.IN_PROGRESS, State.FAILED})


class HistoryLine(NamedTuple):
    """A line that may be imported, unless its code (or profile, on a shared type) is taken."""

    line: int
    display: str
    canonical: str
    state: str
    info_json: str | None  # None: the shared type's own customCodeInfo
    redemption_info_json: str
    profile_id: str | None
    profile_name: str | None
    redeemed_at: datetime | None
    invalidation_reason: str | None
    created_at: datetime | None
    activated_at: datetime | None
    invalidated_at: datetime | None


class Header(NamedTuple):
    """Which column holds which field."""

    columns: dict[str, int]


def read_header(text: str) -> Header | str:
    """The column map of a header row, or why the row is not a usable header."""
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error as err:
        return f"The header is not valid CSV ({err})."
    index: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = _BY_LOWER.get(cell.strip().lower())
        if name is None:
            allowed = ", ".join(sorted(COLUMNS | set(ALIASES)))
            return f"Unknown column “{cell.strip()[:64]}” (columns: {allowed})."
        if name in index:
            return f"The column {name} appears twice."
        index[name] = i
    if "scanCode" not in index and "redeemedByProfileId" not in index:
        return "The header must name a scanCode column (and, for a shared type, profileId)."
    return Header(index)


def parse_history_line(
    text: str, *, line: int, header: Header, shared_canonical: str | None, shared_display: str
) -> HistoryLine | LineError:
    """Parse one data row; `shared_canonical` is the shared type's scan code (None: personal)."""
    if "\x00" in text:
        return LineError(None, exc.InvalidParameterError.code, "The line contains a NUL character.")
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error as err:
        return LineError(
            shown_scan_code(text.split(",", 1)[0]),
            exc.InvalidParameterError.code,
            f"The line is not valid CSV ({err}).",
        )
    if len(cells) > len(header.columns):
        return LineError(
            shown_scan_code(cells[0] if cells else ""),
            exc.InvalidParameterError.code,
            f"The line has {len(cells)} fields; the header names {len(header.columns)}.",
        )
    row = {
        name: unmark(cells[i].strip()) if i < len(cells) else ""
        for name, i in header.columns.items()
    }
    try:
        return _history_line(row, line, shared_canonical, shared_display)
    except _Refused as refused:
        shown = shown_scan_code(row.get("scanCode", "") or shared_display)
        return LineError(shown, refused.code, refused.message)


class _Refused(Exception):
    def __init__(self, message: str, code: str = exc.InvalidParameterError.code) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _history_line(
    row: dict[str, str], line: int, shared_canonical: str | None, shared_display: str
) -> HistoryLine:
    raw_scan = row.get("scanCode", "")
    # A shared type's row may leave its scan code out; when given, it must be the type's.
    canonical = shared_canonical if shared_canonical and not raw_scan else None
    if canonical is None:
        canonical = codes.canonical_or_none(raw_scan)
    if canonical is None:
        raise _Refused(f"A scan code is {rules.SCAN_CODE_RULE}.", exc.InvalidScanCodeError.code)
    if shared_canonical is not None and canonical != shared_canonical:
        raise _Refused(
            f"A row of a shared code type names its scan code {shared_display} (or none).",
            exc.CodeTypeMismatchError.code,
        )
    display = shared_display if shared_canonical is not None else codes.display(raw_scan)
    state = _state(row.get("codeState", ""), shared=shared_canonical is not None)
    profile_id = row.get("redeemedByProfileId") or None
    profile_name = row.get("redeemedByProfileName") or None
    if profile_id is not None and not rules.is_profile_id(profile_id):
        raise _Refused(f"redeemedByProfileId must be {rules.PROFILE_ID_RULE}.")
    if not rules.is_profile_name(profile_name):
        raise _Refused(f"redeemedByProfileName must be {rules.PROFILE_NAME_RULE}.")
    needs_profile = shared_canonical is not None or state in _PROFILE_STATES
    if needs_profile and profile_id is None:
        raise _Refused(f"A {state} row needs redeemedByProfileId (or profileId).")
    if state in (State.INACTIVE, State.AVAILABLE) and (profile_id or profile_name):
        raise _Refused(f"An {state} code has no redeemer.")
    redeemed_at = _time(row, "redeemedAt")
    if state == State.REDEEMED and redeemed_at is None:
        raise _Refused("A Redeemed row needs redeemedAt.")
    if state != State.REDEEMED and redeemed_at is not None:
        raise _Refused("redeemedAt belongs to Redeemed rows only.")
    reason = row.get("invalidationReason") or None
    if reason is not None and state != State.INVALIDATED:
        raise _Refused("invalidationReason belongs to Invalidated codes only.")
    if reason is not None and not rules.is_text_of(reason, 0, rules.INVALIDATION_REASON_MAX):
        raise _Refused(f"invalidationReason must be {rules.INVALIDATION_REASON_RULE}.")
    invalidated_at = _time(row, "invalidatedAt")
    if invalidated_at is not None and state != State.INVALIDATED:
        raise _Refused("invalidatedAt belongs to Invalidated codes only.")
    activated_at = _time(row, "activatedAt")
    if activated_at is not None and state == State.INACTIVE:
        raise _Refused("An Inactive code has no activatedAt.")
    info = _json(row, "customCodeInfo")
    if shared_canonical is None and info is None:
        info = "{}"
    return HistoryLine(
        line=line,
        display=display,
        canonical=canonical,
        state=state,
        info_json=info,
        redemption_info_json=_json(row, "customRedemptionInfo") or "{}",
        profile_id=profile_id,
        profile_name=profile_name,
        redeemed_at=redeemed_at,
        invalidation_reason=reason,
        created_at=_time(row, "createdAt"),
        activated_at=activated_at,
        invalidated_at=invalidated_at,
    )


def _state(raw: str, *, shared: bool) -> str:
    if not raw:
        return State.REDEEMED.value if shared else State.INACTIVE.value
    state = _STATE_NAMES.get(raw.lower())
    allowed = sorted(SHARED_STATES) if shared else STATE_ORDER
    if state is None or state not in allowed:
        kind = "A shared code type's redemption" if shared else "codeState"
        raise _Refused(f"{kind} must be one of {', '.join(allowed)}.")
    return state


def _time(row: dict[str, str], name: str) -> datetime | None:
    raw = row.get(name, "")
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise _Refused(f"{name} must be an ISO 8601 time such as 2026-01-31T12:00:00.000Z.")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _json(row: dict[str, str], name: str) -> str | None:
    raw = row.get(name, "")
    if not raw:
        return None
    try:
        value: Any = rules.json_loads_strict(raw)
    except ValueError as err:
        raise _Refused(f"{name} must be a JSON object ({err}).") from None
    if not isinstance(value, dict):
        raise _Refused(f"{name} must be a JSON object.")
    problem = rules.json_value_problem(value)
    if problem:
        raise _Refused(f"{name} {problem}.")
    text = rules.compact_json(value)
    if not rules.json_fits(text):
        raise _Refused(f"{name} must be {rules.JSON_OBJECT_RULE}.")
    return text
