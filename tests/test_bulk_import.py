"""Importing a CSV of codes as a job: per-line errors, duplicates, odd files."""

import io
import json

import pytest
from django.core.files.storage import default_storage
from django.db import DataError

from redemption import exceptions as exc
from redemption.db import code_inserts
from redemption.models import AuditEvent, Code, Job
from redemption.services import bulk
from tests.factories import CodeFactory, SharedRedemptionFactory


def run_import(actor, code_type, content: bytes) -> Job:
    job = bulk.job_import_start(actor=actor, code_type_name=code_type.name, upload=content)
    bulk.run_job(job.pk)
    job.refresh_from_db()
    return job


def test_import_commits_good_lines_and_reports_the_rest_per_line(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 4  # several chunks, so duplicates cross chunk boundaries
    CodeFactory(scan_code="EXIS-TING-0001")
    SharedRedemptionFactory(code_type__scan_code="SHAREDCODE1")
    lines = [
        "scanCode,codeState,customCodeInfo",  # 1 header
        "good-0001",  # 2
        "GOOD-0002,Available",  # 3
        'GOOD-0003,Inactive,{"sku": "A", "n": 2}',  # 4 unquoted JSON with a comma
        'GOOD-0004,,"{""sku"": ""B""}"',  # 5 quoted JSON, default state
        "bad!",  # 6 invalid scan code
        "GOOD-0005,Redeemed",  # 7 bad state
        "GOOD-0006,Available,{not json}",  # 8 bad JSON
        "GOOD-0007,Available,[1,2]",  # 9 JSON but not an object
        "GOOD 0001",  # 10 same canonical as line 2 (another chunk)
        "",  # 11 blank
        "existing0001",  # 12 already in the database
        "GOOD-0008,available",  # 13 state is case-insensitive
        "GOOD-0008",  # 14 same chunk duplicate
        "sharedcode1",  # 15 a shared type's scan code
        "GOOD-0009,Available," + json.dumps({"x": "y" * 17_000}),  # 16 JSON over 16 KB
    ]
    content = "\n".join(lines).encode() + b"\nGOOD-00\xff10\nGOOD-0011\r\n"  # 17 not UTF-8, 18

    job = run_import(ops, code_type, content)

    assert job.status == "succeeded"
    assert job.total == job.done == 18
    imported = {c.canonical: c for c in Code.objects.filter(batch=job.batch)}
    assert set(imported) == {
        "G00D0001",
        "G00D0002",
        "G00D0003",
        "G00D0004",
        "G00D0008",
        "G00D0011",
    }
    assert imported["G00D0001"].state == "Inactive"
    assert imported["G00D0001"].scan_code == "GOOD-0001"
    assert imported["G00D0002"].state == "Available"
    assert imported["G00D0002"].activated_at is not None
    assert imported["G00D0003"].custom_code_info == {"sku": "A", "n": 2}
    assert imported["G00D0004"].custom_code_info == {"sku": "B"}
    assert imported["G00D0004"].state == "Inactive"
    assert imported["G00D0008"].state == "Available"
    errors = {e["line"]: (e["code"], e["scanCode"]) for e in job.errors}
    assert errors == {
        6: ("INVALID_SCAN_CODE", "BAD!"),
        7: ("INVALID_PARAMETER_VALUE", "GOOD-0005"),
        8: ("INVALID_PARAMETER_VALUE", "GOOD-0006"),
        9: ("INVALID_PARAMETER_VALUE", "GOOD-0007"),
        10: ("REDEMPTION_CODE_DUPLICATE", "GOOD 0001"),
        12: ("REDEMPTION_CODE_DUPLICATE", "EXISTING0001"),
        14: ("REDEMPTION_CODE_DUPLICATE", "GOOD-0008"),
        15: ("REDEMPTION_CODE_DUPLICATE", "SHAREDCODE1"),
        16: ("INVALID_PARAMETER_VALUE", "GOOD-0009"),
        17: ("INVALID_PARAMETER_VALUE", None),
    }
    assert all(e["message"] for e in job.errors)
    assert job.error_count == 10
    assert job.summary == {
        "imported": 6,
        "duplicatesInFile": 2,
        "duplicatesInDatabase": 2,
        "invalid": 6,
    }
    assert job.batch.kind == "import"
    assert job.batch.quantity == 6
    event = AuditEvent.objects.get(action="codes.import")
    assert event.details["imported"] == 6
    assert event.details["errors"] == 10
    assert not default_storage.exists(job.upload)


def test_import_refuses_a_scan_code_whose_display_form_is_too_long(ops, code_type):
    spaced = "-".join("AB" * 30)  # 60 characters canonical, 119 as written

    job = run_import(ops, code_type, f"{spaced}\nFINE-0001\n".encode())

    assert job.summary == {
        "imported": 1,
        "duplicatesInFile": 0,
        "duplicatesInDatabase": 0,
        "invalid": 1,
    }
    assert job.errors[0]["code"] == "INVALID_SCAN_CODE"
    assert job.errors[0]["line"] == 1


def test_import_refuses_a_nul_character_in_custom_info_per_line(ops, code_type):
    content = b'NULL-0001,Available,"{""note"": ""a\\u0000b""}"\nFINE-0002,Available\n'

    job = run_import(ops, code_type, content)

    assert job.status == "succeeded"
    assert job.summary["imported"] == 1
    assert job.errors == [
        {
            "line": 1,
            "scanCode": "NULL-0001",
            "code": "INVALID_PARAMETER_VALUE",
            "message": "customCodeInfo must not contain NUL characters or unpaired surrogates.",
        }
    ]


def test_import_keeps_the_first_thousand_errors_and_counts_all(ops, code_type):
    content = b"".join(b"bad!%d\n" % i for i in range(1500)) + b"REAL-CODE-1\n"

    job = run_import(ops, code_type, content)

    assert job.status == "succeeded"
    assert len(job.errors) == 1000
    assert job.error_count == 1500
    assert job.errors[0]["line"] == 1
    assert job.errors[-1]["line"] == 1000
    assert job.summary["imported"] == 1


def test_only_the_first_line_may_be_a_header(ops, code_type):
    job = run_import(ops, code_type, b"scanCode\nABCD-1234\nscanCode\n")

    assert job.summary["imported"] == 2  # the second "scanCode" is a (valid) code
    assert Code.objects.filter(canonical="SCANC0DE").exists()


@pytest.mark.parametrize("content", [b"", b"\n\n", b"scanCode,codeState\n"])
def test_importing_an_empty_file_succeeds_with_an_explanation(ops, code_type, content):
    job = run_import(ops, code_type, content)

    assert job.status == "succeeded"
    assert job.summary["imported"] == 0
    assert job.error_count == 1
    assert job.errors[0]["line"] is None
    assert "no codes" in job.errors[0]["message"]


def test_a_binary_file_is_reported_line_by_line(ops, code_type):
    job = run_import(ops, code_type, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\n")

    assert job.status == "succeeded"
    assert job.summary["imported"] == 0
    assert job.error_count >= 1
    assert not Code.objects.filter(code_type=code_type).exists()


def test_import_accepts_a_byte_order_mark_and_a_file_object(ops, code_type, tmp_path):
    path = tmp_path / "codes.csv"
    path.write_bytes("\ufeffscanCode\nABCD-1234\n".encode())

    with path.open("rb") as fh:
        job = bulk.job_import_start(actor=ops, code_type_name=code_type.name, upload=fh)
    assert job.upload == f"imports/{job.pk}.csv"
    assert default_storage.exists(job.upload)
    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.summary["imported"] == 1
    assert job.error_count == 0


def test_import_into_a_shared_type_is_refused_up_front(ops, shared_type):
    with pytest.raises(exc.TypeMustBeSingleUseError):
        bulk.job_import_start(actor=ops, code_type_name=shared_type.name, upload=b"ABCD1234\n")
    assert not Job.objects.exists()


def test_hostile_content_becomes_line_errors_and_every_valid_line_imports(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 3  # several chunks, so a bad line shares a chunk with good ones
    huge_field = "x" * 140_000  # over the csv module's 131,072-character field limit
    lines = [
        b"scanCode,codeState,customCodeInfo",  # 1 header
        b"GOOD-0001",  # 2
        b'BIG0-0001,Available,"' + huge_field.encode() + b'"',  # 3 over the csv field limit
        b"GOOD-0002,Available",  # 4
        b'"CRCR-0001"\r,Available',  # 5 a stray carriage return after the quotes
        b"DEEP-0001,Available," + b"[" * 50_000 + b"]" * 10,  # 6 RecursionError in json
        b'SURR-0001,Available,{"a": "\\ud800"}',  # 7 a lone surrogate PostgreSQL refuses
        b"NULB-0001\x00,Available",  # 8 a NUL byte
        b'LONG-0001,Available,{"a": "' + b"y" * 70_000 + b'"}',  # 9 over 64 KiB
        b'NULE-0001,Available,{"a": "\\u0000"}',  # 10 a NUL escape
        b'INFN-0001,Available,{"a": 1e999999}',  # 11 a number that reads as infinity
        b'GOOD-0003,Inactive,{"ok": true}',  # 12
        b'=HYPERLINK("http://evil.example/"),Available',  # 13 not a scan code
        b"GOOD-0004,available",  # 14
    ]

    job = run_import(ops, code_type, b"\n".join(lines) + b"\n")

    assert job.status == "succeeded", job.errors
    imported = set(Code.objects.filter(batch=job.batch).values_list("canonical", flat=True))
    assert imported == {"G00D0001", "G00D0002", "G00D0003", "G00D0004"}
    assert {e["line"]: e["code"] for e in job.errors} == {
        3: "INVALID_PARAMETER_VALUE",
        5: "INVALID_PARAMETER_VALUE",
        6: "INVALID_PARAMETER_VALUE",
        7: "INVALID_PARAMETER_VALUE",
        8: "INVALID_PARAMETER_VALUE",
        9: "INVALID_PARAMETER_VALUE",
        10: "INVALID_PARAMETER_VALUE",
        11: "INVALID_PARAMETER_VALUE",
        13: "INVALID_SCAN_CODE",
    }
    by_line = {e["line"]: e for e in job.errors}
    assert "64 KiB" in by_line[3]["message"] and "64 KiB" in by_line[9]["message"]
    assert by_line[7]["scanCode"] == "SURR-0001"
    assert all(set(e) == {"line", "scanCode", "code", "message"} for e in job.errors)
    assert job.summary == {
        "imported": 4,
        "duplicatesInFile": 0,
        "duplicatesInDatabase": 0,
        "invalid": 9,
    }
    assert job.total == job.done == 14
    assert not default_storage.exists(job.upload)


def test_the_upload_is_deleted_when_the_import_fails_half_way(ops, code_type, monkeypatch):
    def broken_flush(self):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(bulk.imports.ImportRun, "flush", broken_flush)

    job = run_import(ops, code_type, b"GOOD-0001\nGOOD-0002\n")

    assert job.status == "failed"
    assert not default_storage.exists(job.upload)


def test_an_upload_whose_batch_is_gone_is_deleted_with_the_failed_job(ops, code_type):
    job = bulk.job_import_start(actor=ops, code_type_name=code_type.name, upload=b"GOOD-0001\n")
    job.batch.delete()

    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert not default_storage.exists(job.upload)


def test_a_chunk_the_database_refuses_is_retried_line_by_line(ops, code_type, monkeypatch):
    real = bulk.imports.ImportRun._insert

    def refuse_one_code(self, pending):
        if "BADC0DE" in pending:
            raise DataError("value refused by the database")
        return real(self, pending)

    monkeypatch.setattr(bulk.imports.ImportRun, "_insert", refuse_one_code)

    job = run_import(ops, code_type, b"GOOD-0001\nBADC-ODE\nGOOD-0002\n")

    assert job.status == "succeeded"
    assert set(Code.objects.filter(batch=job.batch).values_list("canonical", flat=True)) == {
        "G00D0001",
        "G00D0002",
    }
    assert [(e["line"], e["scanCode"]) for e in job.errors] == [(2, "BADC-ODE")]
    assert "database refused" in job.errors[0]["message"]


def test_after_a_chunk_meets_existing_codes_the_next_chunks_skip_the_straight_copy(
    ops, code_type, settings, monkeypatch
):
    settings.JOB_BATCH_SIZE = 2
    CodeFactory(scan_code="OLD-0001")
    tried_copy = []
    if code_inserts.returns_inserted():
        real_ahead = code_inserts.codes_copy_made_ahead
        real = code_inserts.codes_insert_returning

        def spy_ahead(text, **kwargs):
            tried_copy.append(True)  # the straight COPY of the text the reader thread made
            return real_ahead(text, **kwargs)

        def spy(rows, **kwargs):
            tried_copy.append(kwargs["direct"])
            return real(rows, **kwargs)

        monkeypatch.setattr(code_inserts, "codes_copy_made_ahead", spy_ahead)
        monkeypatch.setattr(code_inserts, "codes_insert_returning", spy)

    job = run_import(ops, code_type, b"NEW-0001\nNEW-0002\nOLD-0001\nNEW-0003\nNEW-0004\n")

    assert job.status == "succeeded"
    assert job.summary["imported"] == 4
    assert job.summary["duplicatesInDatabase"] == 1
    assert [(e["line"], e["scanCode"]) for e in job.errors] == [(3, "OLD-0001")]
    if code_inserts.returns_inserted():
        # Chunk 1 goes straight in; chunk 2 tries, is refused, and goes through the staging
        # insert; chunk 3 goes there at once.
        assert tried_copy == [True, True, False, False]


def test_an_over_long_line_is_skipped_without_being_read_whole(tmp_path):
    path = tmp_path / "long.csv"
    path.write_bytes(b"GOOD-0001\n" + b"A" * (8 * 1024 * 1024) + b"\nGOOD-0002")
    reads: list[int] = []

    class Spy(io.BufferedReader):
        def readline(self, size=-1):
            line = super().readline(size)
            reads.append(len(line))
            return line

    with Spy(io.FileIO(path, "rb")) as fh:
        lines = list(bulk.imports._physical_lines(fh))

    assert lines == [b"GOOD-0001", None, b"GOOD-0002"]
    assert max(reads) <= 1024 * 1024
