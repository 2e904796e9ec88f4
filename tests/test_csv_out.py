"""The one streaming CSV writer behind every CSV download."""

from redemption.csv_out import csv_download, csv_lines


def test_rows_become_csv_lines_one_row_at_a_time():
    rows = iter([["scanCode"], ["AB-12"], ["CD-34"]])

    first = next(csv_lines(rows))

    assert first == "scanCode\r\n"
    assert list(rows) == [["AB-12"], ["CD-34"]]  # nothing drawn beyond the line asked for


def test_fields_are_quoted_as_csv_needs():
    rows = [["AB-12", 'says "hi", twice'], ["CD-34", "two\nlines"], ["EF-56", ""]]

    assert list(csv_lines(rows)) == [
        'AB-12,"says ""hi"", twice"\r\n',
        'CD-34,"two\nlines"\r\n',
        "EF-56,\r\n",
    ]


def test_a_download_streams_an_uncached_attachment():
    response = csv_download(iter([["scanCode"], ["AB-12"]]), "gift cards-2026.csv")

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="gift cards-2026.csv"'
    assert response["Cache-Control"] == "no-store"
    assert b"".join(response.streaming_content) == b"scanCode\r\nAB-12\r\n"
