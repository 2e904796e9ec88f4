"""Parse one line of an import file: `scanCode[,codeState][,customCodeInfo]`.

Pure functions: text in, a parsed line or the line's error out; no database. Duplicates are
not judged here: that needs the rest of the file and the database.
"""

import csv
from typing import NamedTuple

from redemption import codes, rules
from redemption import exceptions as exc
from redemption.csv_out import unmark
from redemption.models import State

HEADER_NAMES = frozenset({"scancode", "scan_code", "scan code"})
_STATE_NAMES = {s.lower(): s for s in (State.INACTIVE.value, State.AVAILABLE.value)}


class ParsedLine(NamedTuple):
    """A line that may be imported, unless its code is a duplicate."""

    canonical: str
    display: str
    state: str
    info_json: str  # compact JSON text of customCodeInfo


class LineError(NamedTuple):
    """Why a line cannot be imported; `scan_code` is its code as shown to the user, if any."""

    scan_code: str | None
    code: str
    message: str


def is_header(text: str) -> bool:
    """Whether the line is a header row (its first field names the scan code column)."""
    first = text.split(",", 1)[0].strip().strip('"').lower()
    return first in HEADER_NAMES


def parse_line(text: str) -> ParsedLine | LineError:
    """Parse one line of text (without its line break); never raises for any text."""
    if "\x00" in text:
        return LineError(None, exc.InvalidParameterError.code, "The line contains a NUL character.")
    try:
        fields = split_line(text)
    except csv.Error as err:
        return LineError(
            shown_scan_code(text.split(",", 1)[0]),
            exc.InvalidParameterError.code,
            f"The line is not valid CSV ({err}).",
        )
    raw_scan = unmark(fields[0].strip()) if fields else ""
    canon = codes.canonical_or_none(raw_scan)
    display = codes.display(raw_scan)
    if canon is None:
        return _error(
            display, exc.InvalidScanCodeError.code, f"A scan code is {rules.SCAN_CODE_RULE}."
        )
    raw_state = fields[1].strip() if len(fields) > 1 else ""
    state = _STATE_NAMES.get(raw_state.lower()) if raw_state else State.INACTIVE.value
    if state is None:
        return _error(
            display, exc.InvalidParameterError.code, "codeState must be Inactive or Available."
        )
    raw_info = fields[2].strip() if len(fields) > 2 else ""
    info_json = "{}"
    if raw_info:
        try:
            info = rules.json_loads_strict(raw_info)
        except ValueError as err:
            return _error(
                display,
                exc.InvalidParameterError.code,
                f"customCodeInfo must be a JSON object ({err}).",
            )
        if not isinstance(info, dict):
            return _error(
                display, exc.InvalidParameterError.code, "customCodeInfo must be a JSON object."
            )
        problem = rules.json_value_problem(info)
        if problem:
            # Refuse the line, not the whole chunk the database would refuse with it.
            return _error(display, exc.InvalidParameterError.code, f"customCodeInfo {problem}.")
        info_json = rules.compact_json(info)
        if not rules.json_fits(info_json):
            return _error(
                display,
                exc.InvalidParameterError.code,
                f"customCodeInfo must be {rules.JSON_OBJECT_RULE}.",
            )
    return ParsedLine(canonical=canon, display=display, state=state, info_json=info_json)


def _error(display: str, code: str, message: str) -> LineError:
    """A line's error, its scan code shown as `shown_scan_code` shows it (worked out only for
    a line in error: a good line needs none of it)."""
    return LineError(shown_scan_code(display), code, message)


def shown_scan_code(text: str) -> str | None:
    """A scan code as a line error shows it: as written, shortened, always storable text."""
    shown = text.strip()[: rules.SCAN_CODE_WRITTEN_MAX].upper()
    if not rules.is_storable_text(shown):
        shown = shown.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    return shown or None


def split_line(text: str) -> list[str]:
    """Split `scanCode[,codeState][,customCodeInfo]`; the JSON may be CSV-quoted or not."""
    if '"' not in text:
        return text.split(",", 2)
    fields = next(csv.reader([text]))
    if len(fields) <= 3:
        return fields
    # Unquoted JSON with commas inside: everything after the second comma is the JSON.
    scan, state, info = text.split(",", 2)
    return [_unquote(scan), _unquote(state), info]


def _unquote(field: str) -> str:
    field = field.strip()
    if len(field) >= 2 and field[0] == field[-1] == '"':
        return field[1:-1].replace('""', '"')
    return field
