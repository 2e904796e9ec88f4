"""Every CSV the product writes: rows streamed one line at a time, formulas neutralised.

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and, in some, a tab or a
carriage return) as a formula. Profile ids, custom info and scan codes come from outside, so
each such cell gets a leading `'`, which spreadsheets show as text and do not display.
"""

import csv
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_MARK = "'"


def safe_cell(value: Any) -> str:
    """The cell as text, with a leading `'` when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return TEXT_MARK + text if text.startswith(FORMULA_STARTS) else text


def unmark(text: str) -> str:
    """Undo safe_cell on a cell read back from a file this product wrote."""
    if text.startswith(TEXT_MARK) and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


class Writable(Protocol):
    """Anything with a text write(), such as an open file or a command's stdout."""

    def write(self, text: str, /) -> Any: ...


class _Echo:
    """A write-only file whose write hands back the line the csv writer produced."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Format each row as one CSV line (RFC 4180 quoting, CRLF line ends), lazily."""
    writer = csv.writer(_Echo())
    return (writer.writerow([safe_cell(cell) for cell in row]) for row in rows)


def csv_write(out: Writable, rows: Iterable[Iterable[Any]], *, line_end: str = "\n") -> int:
    """Write rows to a text file; return how many were written."""
    writer = csv.writer(out, lineterminator=line_end)
    count = 0
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        count += 1
    return count


def csv_download(rows: Iterable[Iterable[Any]], filename: str) -> StreamingHttpResponse:
    """Stream rows as a CSV attachment named `filename`, not to be cached."""
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    return response
