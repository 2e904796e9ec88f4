"""CSV downloads streamed row by row, never held in memory."""

import csv
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header


class _Echo:
    """A write-only file whose write hands back the line the csv writer produced."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    """Format each row as one CSV line (RFC 4180 quoting, CRLF line ends), lazily."""
    writer = csv.writer(_Echo())
    return (writer.writerow(row) for row in rows)


def csv_download(rows: Iterable[list[str]], filename: str) -> StreamingHttpResponse:
    """Stream rows as a CSV attachment named `filename`, not to be cached."""
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    return response
