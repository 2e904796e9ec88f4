"""Bulk work: generation (inline and job), import, export, delete-all / reset-all, jobs."""

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from redemption import codes
from redemption import exceptions as exc
from redemption.models import (
    STATE_ORDER,
    Attempt,
    AuditEvent,
    Batch,
    Code,
    CodeType,
    Job,
    SharedRedemption,
)
from redemption.records import job_record
from redemption.services import bulk
from redemption.tasks import sweep_timeouts_task
from tests.factories import CodeFactory, CodeTypeFactory, SharedRedemptionFactory


def fields_of(err: exc.RedemptionError) -> dict:
    return err.details.get("fields", {})


def start_and_run(**kwargs) -> Job:
    job = bulk.job_generate_start(**kwargs)
    bulk.run_job(job.pk)
    job.refresh_from_db()
    return job


# --- generation ---------------------------------------------------------------------------------


def test_a_generate_job_of_100k_codes_yields_exactly_that_many_distinct_codes(ops, code_type):
    job = bulk.job_generate_start(
        actor=ops, code_type_name=code_type.name, quantity=100_000, state="Available"
    )
    assert job.status == "queued"
    assert job.total == 100_000

    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.total == job.done == 100_000
    assert job.started_at is not None
    assert job.finished_at is not None
    batch_codes = Code.objects.filter(batch=job.batch)
    assert batch_codes.count() == 100_000
    assert batch_codes.values("canonical").distinct().count() == 100_000
    assert set(batch_codes.values_list("state", flat=True).distinct()) == {"Available"}
    assert not batch_codes.filter(activated_at__isnull=True).exists()
    event = AuditEvent.objects.get(action="codes.generate", target_id=str(job.batch_id))
    assert event.details["count"] == 100_000
    assert event.actor_label == ops.label


def test_generated_codes_have_the_requested_shape_and_defaults(ops, code_type):
    job = start_and_run(
        actor=ops,
        code_type_name=code_type.name,
        quantity=50,
        prefix="xmas",
        algorithm_details={"length": 12},
        custom_code_info={"sku": "GC-50"},
    )

    batch = job.batch
    assert (batch.algorithm, batch.prefix, batch.length, batch.include_check) == (
        "Crockford",
        "XMAS",
        12,
        False,
    )
    assert batch.quantity == 50
    for code in Code.objects.filter(batch=batch):
        assert code.scan_code.startswith("XMAS-")
        assert len(code.canonical) == 4 + 12
        assert code.canonical == codes.canonical(code.scan_code)
        assert code.state == "Inactive"
        assert code.activated_at is None
        assert code.version == 1
        assert code.current_attempt == 0
        assert code.custom_code_info == {"sku": "GC-50"}
        assert code.custom_redemption_info == {}
        assert code.code_type_id == code_type.pk
        assert not code.is_shared_anchor


def test_check_character_codes_validate_and_typos_are_caught(ops, code_type):
    batch, generated = bulk.codes_generate_inline(
        actor=ops,
        code_type_name=code_type.name,
        quantity=200,
        prefix="GC",
        algorithm_details={"includeCheck": True, "length": 10},
    )

    assert len(generated) == 200
    assert batch.include_check
    for scan in generated:
        body = codes.canonical(scan)[len("GC") :]
        assert len(body) == 10
        assert codes.has_valid_check(body)
    shape = codes.CodeShape(length=10, prefix="GC", include_check=True)
    typo = codes.canonical(generated[0])
    typo = typo[:-2] + ("0" if typo[-2] != "0" else "1") + typo[-1]
    assert shape.check_fails(typo)


def test_inline_generation_returns_the_codes_of_one_batch(ops, code_type):
    batch, generated = bulk.codes_generate_inline(
        actor=ops, code_type_name=code_type.name, quantity=1000, algorithm="FiveByFive"
    )

    assert len(generated) == len(set(generated)) == 1000
    assert set(Code.objects.filter(batch=batch).values_list("scan_code", flat=True)) == set(
        generated
    )
    assert all(len(s.split("-")) == 5 for s in generated)
    assert AuditEvent.objects.filter(action="codes.generate", target_id=str(batch.pk)).count() == 1


@pytest.mark.parametrize("quantity", [0, 1001, -5, True, "10", 2.0, None])
def test_inline_generation_refuses_a_bad_quantity(ops, code_type, quantity):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.codes_generate_inline(actor=ops, code_type_name=code_type.name, quantity=quantity)
    assert "quantity" in fields_of(caught.value)
    assert not Batch.objects.exists()


def test_job_generation_refuses_more_than_ten_million(ops, code_type):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10_000_001)
    assert "quantity" in fields_of(caught.value)
    assert not Job.objects.exists()
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"algorithm": "Base64"}, "algorithmName"),
        ({"algorithm": 7}, "algorithmName"),
        ({"prefix": "BAD PREFIX!"}, "prefix"),
        ({"algorithm_details": {"length": 7}}, "algorithmDetails.length"),
        ({"algorithm_details": {"length": 33}}, "algorithmDetails.length"),
        ({"algorithm_details": {"length": "12"}}, "algorithmDetails.length"),
        ({"algorithm_details": {"includeCheck": "yes"}}, "algorithmDetails.includeCheck"),
        ({"algorithm_details": {"checksum": True}}, "algorithmDetails.checksum"),
        ({"algorithm_details": ["includeCheck"]}, "algorithmDetails"),
        (
            {"algorithm": "FiveByFive", "algorithm_details": {"length": 16}},
            "algorithmDetails.length",
        ),
        (
            {"algorithm": "StructuredGuid", "algorithm_details": {"includeCheck": True}},
            "algorithmDetails.includeCheck",
        ),
        ({"state": "Redeemed"}, "codeState"),
        ({"custom_code_info": ["not", "an", "object"]}, "customCodeInfo"),
    ],
)
def test_generation_options_are_validated_before_anything_is_created(
    ops, code_type, options, field
):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10, **options)
    assert field in fields_of(caught.value)
    assert not Job.objects.exists()
    assert not Batch.objects.exists()


def test_generation_needs_an_existing_enabled_personal_type(ops, shared_type):
    disabled = CodeTypeFactory(is_disabled=True)

    with pytest.raises(exc.TypeMustBeSingleUseError):
        bulk.codes_generate_inline(actor=ops, code_type_name=shared_type.name, quantity=5)
    with pytest.raises(exc.CodeTypeNotFoundError):
        bulk.job_generate_start(actor=ops, code_type_name="no-such-type", quantity=5)
    with pytest.raises(exc.CodeTypeDisabledError):
        bulk.job_generate_start(actor=ops, code_type_name=disabled.name, quantity=5)
    assert not Batch.objects.exists()


@pytest.mark.parametrize("who", ["support", "viewer"])
def test_only_ops_may_run_bulk_operations(request, code_type, who):
    actor = request.getfixturevalue(who)

    with pytest.raises(exc.PermissionDeniedError):
        bulk.codes_generate_inline(actor=actor, code_type_name=code_type.name, quantity=1)
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_generate_start(actor=actor, code_type_name=code_type.name, quantity=1)
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_import_start(actor=actor, code_type_name=code_type.name, upload=b"ABCD1234\n")
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_delete_codes_start(
            actor=actor,
            code_type_name=code_type.name,
            states=["Inactive"],
            confirm_name=code_type.name,
        )
    with pytest.raises(exc.PermissionDeniedError):
        bulk.job_reset_codes_start(
            actor=actor,
            code_type_name=code_type.name,
            states=["Redeemed"],
            to_state="Available",
            confirm_name=code_type.name,
        )


def test_a_server_key_actor_may_generate(code_type):
    from redemption.actors import Actor

    key_actor = Actor(kind="server_key", id="1", label="server key backend")
    batch, generated = bulk.codes_generate_inline(
        actor=key_actor, code_type_name=code_type.name, quantity=3
    )
    assert len(generated) == 3
    assert batch.created_by == "server key backend"


def test_generation_is_refused_when_it_would_use_too_much_of_the_code_space(ops, code_type):
    # Crockford, 8 characters including a check character: 32**7 ≈ 3.4e10 codes, so
    # 10,000,000 codes (x1000 safety) fit only while fewer than ~2.4e10 were issued.
    options = {"algorithm_details": {"length": 8, "includeCheck": True}}
    now = timezone.now()
    Batch.objects.bulk_create(
        Batch(
            code_type=code_type,
            kind="generate",
            algorithm="Crockford",
            length=8,
            include_check=True,
            prefix="",
            quantity=2_100_000_000,
            created_at=now,
        )
        for _ in range(12)
    )

    with pytest.raises(exc.InsufficientCodeSpaceError) as caught:
        bulk.job_generate_start(
            actor=ops, code_type_name=code_type.name, quantity=10_000_000, **options
        )

    assert caught.value.http_status == 400
    assert 0 < caught.value.details["maxQuantity"] < 10_000_000
    assert not Job.objects.exists()
    # Another prefix is another code space, so the same request fits there.
    job = bulk.job_generate_start(
        actor=ops, code_type_name=code_type.name, quantity=10_000_000, prefix="NEW", **options
    )
    assert job.batch.quantity == 10_000_000


def test_code_space_is_shared_by_display_variants_of_a_prefix(db):
    now = timezone.now()
    ct = CodeTypeFactory()
    Batch.objects.create(
        code_type=ct,
        kind="generate",
        algorithm="Crockford",
        length=8,
        prefix="AB-C",
        quantity=7,
        created_at=now,
    )
    Batch.objects.create(
        code_type=ct, kind="import", algorithm="", prefix="", quantity=1000, created_at=now
    )

    assert bulk.already_issued(codes.CodeShape(length=8, prefix="ABC")) == 7
    assert bulk.already_issued(codes.CodeShape(length=8, prefix="ABD")) == 0


def test_collisions_are_topped_up_until_the_batch_is_full(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 3
    other = CodeFactory(
        scan_code="TAKEN-0001",
        state="Redeemed",
        redeemed_by_profile_id="p",
        redeemed_at=timezone.now(),
    )
    batch = Batch.objects.create(
        code_type=code_type, kind="generate", quantity=5, created_at=timezone.now()
    )
    candidates = iter(
        [
            ("TAKEN-0001", "TAKEN0001"),  # exists in the database
            ("FRESH-0001", "FRESH0001"),
            ("FRESH-0001", "FRESH0001"),  # repeated by the generator
            ("FRESH-0002", "FRESH0002"),
            ("TAKEN-0001", "TAKEN0001"),
            ("FRESH-0003", "FRESH0003"),
            ("FRESH-0004", "FRESH0004"),
            ("FRESH-0005", "FRESH0005"),
            ("FRESH-0006", "FRESH0006"),
        ]
    )
    progress = []

    done = bulk.batch_fill(
        batch=batch,
        quantity=5,
        state="Available",
        custom_code_info={},
        candidates=candidates,
        on_chunk=progress.append,
    )

    assert done == 5
    assert sorted(Code.objects.filter(batch=batch).values_list("canonical", flat=True)) == [
        "FRESH0001",
        "FRESH0002",
        "FRESH0003",
        "FRESH0004",
        "FRESH0005",
    ]
    assert next(candidates) == ("FRESH-0006", "FRESH0006")  # drew no more than it needed
    assert progress[-1] == 5
    other.refresh_from_db()
    assert other.batch_id is None
    assert other.state == "Redeemed"


def test_top_up_gives_up_when_the_candidates_run_out(code_type):
    CodeFactory(scan_code="SPARE-0001")
    batch = Batch.objects.create(
        code_type=code_type, kind="generate", quantity=2, created_at=timezone.now()
    )

    with pytest.raises(exc.InsufficientCodeSpaceError):
        bulk.batch_fill(
            batch=batch,
            quantity=2,
            state="Inactive",
            custom_code_info={},
            candidates=iter([("SPARE-0001", "SPARE0001"), ("NEW-0001", "NEW0001")]),
        )
    assert list(Code.objects.filter(batch=batch).values_list("canonical", flat=True)) == ["NEW0001"]


def test_starting_a_job_queues_the_task_after_commit(
    ops, code_type, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10)

    assert len(callbacks) == 1
    task = DBTaskResult.objects.get(task_path="redemption.tasks.run_job_task")
    assert task.args_kwargs == {"args": [str(job.pk)], "kwargs": {}}
    assert task.status == "READY"


@pytest.mark.django_db(transaction=True)
def test_the_database_worker_runs_a_queued_job(ops_user):
    from redemption.actors import Actor

    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=Actor.staff(ops_user), code_type_name=ct.name, quantity=25)

    call_command("db_worker", batch=True, startup_delay=False, reload=False, interval=0)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert Code.objects.filter(batch=job.batch).count() == 25
    assert DBTaskResult.objects.get(task_path="redemption.tasks.run_job_task").status == (
        "SUCCESSFUL"
    )


def test_a_job_runs_at_most_once(ops, code_type):
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=10)
    bulk.run_job(job.pk)
    first_finish = Job.objects.get(pk=job.pk).finished_at

    bulk.run_job(job.pk)
    bulk.run_job(str(job.pk))

    job.refresh_from_db()
    assert job.finished_at == first_finish
    assert Code.objects.filter(batch=job.batch).count() == 10
    assert AuditEvent.objects.filter(action="codes.generate").count() == 1


def test_job_progress_is_written_per_chunk(ops, code_type, settings):
    settings.JOB_BATCH_SIZE = 40
    seen = []
    job = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=100)

    bulk.run_job(job.pk, progress=lambda done, total: seen.append((done, total)))

    assert seen == [(40, 100), (80, 100), (100, 100)]


# --- jobs: lookup and record --------------------------------------------------------------------


def test_job_record_has_the_api_shape(ops, code_type):
    job = start_and_run(actor=ops, code_type_name=code_type.name, quantity=3)

    record = job_record(bulk.job_get(str(job.pk)))

    assert set(record) == {
        "jobId",
        "kind",
        "status",
        "total",
        "done",
        "errors",
        "createdAt",
        "finishedAt",
        "resultUrl",
    }
    assert record["jobId"] == str(job.pk)
    assert record["kind"] == "generate"
    assert record["status"] == "succeeded"
    assert record["total"] == record["done"] == 3
    assert record["errors"] == []
    assert record["createdAt"].endswith("Z")
    assert record["finishedAt"].endswith("Z")
    assert record["resultUrl"] == f"/api/v1/server/jobs/{job.pk}/result.csv"


def test_a_queued_or_import_job_has_no_result_url(ops, code_type):
    queued = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=3)
    imported = bulk.job_import_start(actor=ops, code_type_name=code_type.name, upload=b"ABCD1234\n")
    bulk.run_job(imported.pk)

    assert job_record(queued)["resultUrl"] is None
    assert job_record(queued)["finishedAt"] is None
    assert job_record(bulk.job_get(imported.pk))["resultUrl"] is None


@pytest.mark.parametrize("job_id", ["not-a-uuid", "2f1c3e4a-0000-4000-8000-000000000000", None])
def test_an_unknown_job_is_not_found(db, job_id):
    with pytest.raises(exc.JobNotFoundError) as caught:
        bulk.job_get(job_id)
    assert caught.value.code == "JOB_NOT_FOUND"
    assert caught.value.reason_code == 40804
    assert caught.value.http_status == 404


def test_the_result_of_a_generate_job_lists_its_codes(ops, code_type):
    job = start_and_run(actor=ops, code_type_name=code_type.name, quantity=12)
    CodeFactory(code_type=code_type)  # not in the batch

    rows = list(bulk.job_result_rows(job))

    assert rows[0] == ["scanCode"]
    assert sorted(r[0] for r in rows[1:]) == sorted(
        Code.objects.filter(batch=job.batch).values_list("scan_code", flat=True)
    )
    assert len(rows) == 13


def test_only_a_succeeded_generate_job_has_a_result(ops, code_type):
    queued = bulk.job_generate_start(actor=ops, code_type_name=code_type.name, quantity=2)
    with pytest.raises(exc.JobNotFoundError):
        bulk.job_result_rows(queued)


# --- import -------------------------------------------------------------------------------------


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
            "message": "customCodeInfo may not contain NUL characters.",
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


def test_a_job_that_cannot_run_fails(ops, code_type):
    job = bulk.job_import_start(actor=ops, code_type_name=code_type.name, upload=b"ABCD1234\n")
    default_storage.delete(job.upload)

    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.finished_at is not None
    assert job.errors[-1]["message"] == "The uploaded file is missing."
    assert job_record(job)["status"] == "failed"


# --- export -------------------------------------------------------------------------------------


def test_export_streams_every_code_of_the_type_once(ops, code_type, settings, monkeypatch):
    monkeypatch.setattr(bulk.export, "EXPORT_CHUNK_SIZE", 7)
    batch, _ = bulk.codes_generate_inline(
        actor=ops, code_type_name=code_type.name, quantity=30, custom_code_info={"a": 1}
    )
    redeemed = CodeFactory(
        code_type=code_type,
        state="Redeemed",
        redeemed_by_profile_id="p-1",
        redeemed_at=timezone.now(),
    )
    CodeFactory()  # another type

    rows = bulk.export_rows(code_type=code_type)

    assert not isinstance(rows, list)
    rows = list(rows)
    assert rows[0] == bulk.EXPORT_HEADER
    assert len(rows) == 32
    assert len({r[0] for r in rows[1:]}) == 31
    by_scan = {r[0]: r for r in rows[1:]}
    row = by_scan[redeemed.scan_code]
    assert row[1:4] == ["Redeemed", code_type.name, ""]
    assert row[4] == "{}"
    assert row[5] == "p-1"
    assert row[6].endswith("Z")
    generated = next(r for r in rows[1:] if r[3] == str(batch.pk))
    assert generated[4] == '{"a":1}'
    assert generated[1] == "Inactive"


def test_export_filters_by_state_and_batch(ops, code_type):
    batch, generated = bulk.codes_generate_inline(
        actor=ops, code_type_name=code_type.name, quantity=5, state="Available"
    )
    CodeFactory(code_type=code_type, state="Available")
    CodeFactory(code_type=code_type, state="Inactive")

    available = list(bulk.export_rows(code_type=code_type, state="Available"))
    in_batch = list(bulk.export_rows(code_type=code_type, batch_id=str(batch.pk)))
    inactive_in_batch = list(
        bulk.export_rows(code_type=code_type, state="Inactive", batch_id=batch.pk)
    )

    assert len(available) == 1 + 6
    assert sorted(r[0] for r in in_batch[1:]) == sorted(generated)
    assert inactive_in_batch == [bulk.EXPORT_HEADER]


def test_export_refuses_an_unknown_state_or_batch(code_type):
    with pytest.raises(exc.InvalidParameterError):
        bulk.export_rows(code_type=code_type, state="Lost")
    with pytest.raises(exc.InvalidParameterError):
        bulk.export_rows(code_type=code_type, batch_id="nope")
    with pytest.raises(exc.InvalidParameterError):
        bulk.export_rows(code_type=code_type, batch_id="2f1c3e4a-0000-4000-8000-000000000000")


def test_export_of_a_shared_type_lists_its_redemptions(shared_type):
    SharedRedemptionFactory(code_type=shared_type, profile_id="ann")
    SharedRedemptionFactory(
        code_type=shared_type, profile_id="bob", state="Failed", redeemed_at=None
    )

    rows = list(bulk.export_rows(code_type=shared_type, state="Redeemed"))

    assert rows[1:] == [
        [
            shared_type.scan_code,
            "Redeemed",
            shared_type.name,
            "",
            "{}",
            "ann",
            rows[1][6],
            rows[1][7],
        ]
    ]


# --- delete all / reset all ---------------------------------------------------------------------


@pytest.fixture
def stocked_type(db):
    """A personal type with two codes in every state, attempts on the fulfilment states."""
    ct = CodeTypeFactory(name="stocked")
    now = timezone.now()
    for state in STATE_ORDER:
        for i in range(2):
            extra = {}
            if state in {"Redeemed", "InProgress", "Failed"}:
                extra = {"redeemed_by_profile_id": f"p-{i}", "current_attempt": 1}
            if state == "Redeemed":
                extra["redeemed_at"] = now
            if state == "Invalidated":
                extra.update(invalidated_at=now, invalidation_reason="lost")
            code = CodeFactory(code_type=ct, state=state, **extra)
            if state in {"InProgress", "Failed"}:
                Attempt.objects.create(
                    code=code,
                    attempt=1,
                    profile_id=f"p-{i}",
                    state=state,
                    started_at=now,
                    deadline_at=now + timedelta(minutes=5),
                )
    return ct


def test_the_preview_counts_each_state_in_one_query(stocked_type, django_assert_num_queries):
    CodeFactory(code_type=stocked_type, state="Available")

    with django_assert_num_queries(2):  # the type, then one GROUP BY
        counts = bulk.delete_reset_preview(code_type_name=stocked_type.name)

    assert counts == {
        "Inactive": 2,
        "Available": 3,
        "InProgress": 2,
        "Redeemed": 2,
        "Invalidated": 2,
        "Failed": 2,
    }


def test_delete_all_removes_only_the_chosen_states_in_batches(ops, stocked_type, settings):
    settings.JOB_BATCH_SIZE = 2
    other = CodeFactory(state="Available")

    job = bulk.job_delete_codes_start(
        actor=ops,
        code_type_name=stocked_type.name,
        states=["Failed", "Inactive", "Available"],
        confirm_name="stocked",
    )
    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.total == job.done == 6
    left = Counter(Code.objects.filter(code_type=stocked_type).values_list("state", flat=True))
    assert left == {"InProgress": 2, "Redeemed": 2, "Invalidated": 2}
    assert Attempt.objects.count() == 2  # the InProgress codes keep theirs
    assert Code.objects.filter(pk=other.pk).exists()
    event = AuditEvent.objects.get(action="codes.delete_all")
    assert event.actor_label == ops.label
    assert event.code_type_name == "stocked"
    assert event.details["states"] == ["Inactive", "Available", "Failed"]
    assert event.details["counts"] == {"Inactive": 2, "Available": 2, "Failed": 2}
    assert event.details["total"] == 6


def test_reset_all_clears_redemption_data_and_attempts(ops, stocked_type, settings):
    settings.JOB_BATCH_SIZE = 3

    job = bulk.job_reset_codes_start(
        actor=ops,
        code_type_name=stocked_type.name,
        states=["Redeemed", "InProgress", "Failed", "Invalidated"],
        to_state="Available",
        confirm_name="stocked",
    )
    bulk.run_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.total == job.done == 8
    counts = bulk.delete_reset_preview(code_type_name="stocked")
    assert counts == {
        "Inactive": 2,
        "Available": 10,
        "InProgress": 0,
        "Redeemed": 0,
        "Invalidated": 0,
        "Failed": 0,
    }
    assert not Attempt.objects.exists()
    reset = Code.objects.filter(code_type=stocked_type, version=2)
    assert reset.count() == 8
    for code in reset:
        assert code.redeemed_by_profile_id is None
        assert code.redeemed_at is None
        assert code.invalidated_at is None
        assert code.invalidation_reason is None
        assert code.current_attempt == 0
        assert code.activated_at is not None
    event = AuditEvent.objects.get(action="codes.reset_all")
    assert event.details["toState"] == "Available"
    assert event.details["counts"] == {
        "InProgress": 2,
        "Redeemed": 2,
        "Invalidated": 2,
        "Failed": 2,
    }


def test_reset_to_inactive_clears_the_activation_time(ops, code_type):
    code = CodeFactory(code_type=code_type, state="Available", activated_at=timezone.now())

    job = bulk.job_reset_codes_start(
        actor=ops,
        code_type_name=code_type.name,
        states=["Available"],
        to_state="Inactive",
        confirm_name=code_type.name,
    )
    bulk.run_job(job.pk)

    code.refresh_from_db()
    assert code.state == "Inactive"
    assert code.activated_at is None


@pytest.mark.parametrize("reset", [False, True])
def test_delete_or_reset_of_a_shared_type_removes_its_redemptions(ops, shared_type, reset):
    shared_type.max_redemptions = 10
    shared_type.redemption_count = 3
    shared_type.save()
    for state in ("Redeemed", "Redeemed", "InProgress"):
        sr = SharedRedemptionFactory(
            code_type=shared_type,
            state=state,
            redeemed_at=timezone.now() if state == "Redeemed" else None,
        )
    Attempt.objects.create(
        shared=sr,
        attempt=1,
        profile_id=sr.profile_id,
        started_at=timezone.now(),
        deadline_at=timezone.now(),
    )
    SharedRedemptionFactory(code_type=shared_type, state="Failed", redeemed_at=None)

    if reset:
        job = bulk.job_reset_codes_start(
            actor=ops,
            code_type_name=shared_type.name,
            states=["InProgress", "Failed"],
            to_state="Inactive",
            confirm_name=shared_type.name,
        )
    else:
        job = bulk.job_delete_codes_start(
            actor=ops,
            code_type_name=shared_type.name,
            states=["InProgress", "Failed"],
            confirm_name=shared_type.name,
        )
    bulk.run_job(job.pk)

    assert Job.objects.get(pk=job.pk).status == "succeeded"
    assert sorted(
        SharedRedemption.objects.filter(code_type=shared_type).values_list("state", flat=True)
    ) == ["Redeemed", "Redeemed"]
    assert not Attempt.objects.exists()
    assert CodeType.objects.get(pk=shared_type.pk).redemption_count == 2
    assert Code.objects.filter(code_type=shared_type, is_shared_anchor=True).exists()


@pytest.mark.parametrize("confirm", ["STOCKED", "stocked ", "", None, "other"])
def test_delete_all_needs_the_exact_type_name(ops, stocked_type, confirm):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_delete_codes_start(
            actor=ops, code_type_name="stocked", states=["Inactive"], confirm_name=confirm
        )

    assert set(fields_of(caught.value)) == {"confirm"}
    assert not Job.objects.exists()
    assert Code.objects.filter(code_type=stocked_type).count() == 12


@pytest.mark.parametrize(
    ("states", "to_state", "fields"),
    [
        ([], "Available", {"states"}),
        (["Lost"], "Available", {"states"}),
        ("Redeemed", "Available", {"states"}),
        (["Redeemed"], "Redeemed", {"toState"}),
        (["Redeemed"], None, {"toState"}),
    ],
)
def test_reset_all_rechecks_states_and_target(ops, stocked_type, states, to_state, fields):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_reset_codes_start(
            actor=ops,
            code_type_name="stocked",
            states=states,
            to_state=to_state,
            confirm_name="stocked",
        )

    assert set(fields_of(caught.value)) == fields
    assert not Job.objects.exists()


def test_delete_all_of_an_unknown_type_is_not_found(ops):
    with pytest.raises(exc.CodeTypeNotFoundError):
        bulk.job_delete_codes_start(
            actor=ops, code_type_name="ghost", states=["Inactive"], confirm_name="ghost"
        )


# --- periodic sweep ------------------------------------------------------------------------------


def test_the_sweep_task_fails_stale_attempts_and_keeps_one_follow_up_queued(db, settings):
    settings.SWEEP_INTERVAL_SECONDS = 90
    past = timezone.now() - timedelta(minutes=10)
    code = CodeFactory(state="InProgress", redeemed_by_profile_id="p-1", current_attempt=1)
    Attempt.objects.create(
        code=code, attempt=1, profile_id="p-1", started_at=past, deadline_at=past
    )

    assert sweep_timeouts_task.call() == 1
    sweep_timeouts_task.call()

    code.refresh_from_db()
    assert code.state == "Failed"
    queued = DBTaskResult.objects.filter(task_path="redemption.tasks.sweep_timeouts_task")
    assert queued.count() == 1
    delay = queued.get().run_after - timezone.now()
    assert timedelta(seconds=80) < delay <= timedelta(seconds=90)
