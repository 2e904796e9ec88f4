"""Generate inline, generate and import jobs, job status and the result CSV."""

import csv
import io
import uuid

import pytest
from django.utils import timezone

from redemption.models import Batch, Code, Job
from redemption.services import bulk
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

TYPES = "/api/v1/server/code-types"


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _is(response, status, code):
    assert (response.status, response.code) == (status, code), response.json()


def _exhaust_code_space(ct) -> None:
    """Record batches that used up the space of 8-character Crockford codes with a check."""
    for _ in range(16):
        Batch.objects.create(
            code_type=ct,
            kind=Batch.Kind.GENERATE,
            algorithm="Crockford",
            length=8,
            include_check=True,
            quantity=2**31 - 1,
            created_at=timezone.now(),
        )


def test_generate_inline_returns_the_codes_of_one_batch(server_api):
    ct = CodeTypeFactory()

    response = server_api.post(
        f"{TYPES}/{ct.name}/generate-inline",
        {"quantity": 5, "prefix": "XMAS", "codeState": "Available", "customCodeInfo": {"v": 1}},
    )

    assert response.status == 201
    body = response.json()
    assert len(body["generatedScanCodes"]) == 5
    assert all(c.startswith("XMAS-") for c in body["generatedScanCodes"])
    codes = Code.objects.filter(batch_id=body["batchId"])
    assert codes.count() == 5
    assert {c.state for c in codes} == {"Available"}


def test_generate_inline_with_an_algorithm(server_api):
    ct = CodeTypeFactory()
    response = server_api.post(
        f"{TYPES}/{ct.name}/generate-inline", {"quantity": 2, "algorithmName": "FiveByFive"}
    )
    assert [len(c.split("-")) for c in response.json()["generatedScanCodes"]] == [5, 5]


def test_generate_refusals(server_api):
    ct = CodeTypeFactory()
    shared = SharedCodeTypeFactory()
    disabled = CodeTypeFactory(is_disabled=True)
    for kind in ["generate-inline", "generate"]:
        _is(
            server_api.post(f"{TYPES}/nope/{kind}", {"quantity": 1}),
            404,
            "REDEMPTION_CODE_TYPE_NOT_FOUND",
        )
        _is(
            server_api.post(f"{TYPES}/{shared.name}/{kind}", {"quantity": 1}),
            409,
            "REDEMPTION_CODE_TYPE_MUST_BE_SINGLE_USE",
        )
        _is(
            server_api.post(f"{TYPES}/{disabled.name}/{kind}", {"quantity": 1}),
            409,
            "REDEMPTION_CODE_TYPE_DISABLED",
        )
        bad = server_api.post(
            f"{TYPES}/{ct.name}/{kind}",
            {
                "quantity": 0,
                "algorithmName": "Md5",
                "algorithmDetails": {"length": 99, "colour": "red"},
                "prefix": "no!",
            },
        )
        assert set(bad.error["details"]["fields"]) == {
            "quantity",
            "algorithmName",
            "algorithmDetails.length",
            "algorithmDetails.colour",
        }
        bad_prefix = server_api.post(f"{TYPES}/{ct.name}/{kind}", {"quantity": 1, "prefix": "no!"})
        assert list(bad_prefix.error["details"]["fields"]) == ["prefix"]
    too_many = server_api.post(f"{TYPES}/{ct.name}/generate-inline", {"quantity": 1001})
    assert list(too_many.error["details"]["fields"]) == ["quantity"]
    assert not Code.objects.filter(code_type=ct).exists()


def test_generate_refuses_when_the_code_space_is_used_up(server_api):
    ct = CodeTypeFactory()
    _exhaust_code_space(ct)
    body = {"quantity": 1, "algorithmDetails": {"length": 8, "includeCheck": True}}
    for kind in ["generate-inline", "generate"]:
        _is(server_api.post(f"{TYPES}/{ct.name}/{kind}", body), 400, "INSUFFICIENT_CODE_SPACE")


def test_a_generate_job_runs_and_its_result_downloads_as_csv(server_api):
    ct = CodeTypeFactory()

    started = server_api.post(f"{TYPES}/{ct.name}/generate", {"quantity": 25})

    assert started.status == 202
    job = started.json()
    assert job["status"] == "queued"
    assert started["Location"] == f"/api/v1/server/jobs/{job['jobId']}"
    not_yet = server_api.get(f"/api/v1/server/jobs/{job['jobId']}/result.csv")
    _is(not_yet, 404, "JOB_NOT_FOUND")

    bulk.run_job(job["jobId"])
    done = server_api.get(started["Location"]).json()
    result = server_api.get(done["resultUrl"])

    assert (done["status"], done["done"], done["total"]) == ("succeeded", 25, 25)
    assert result.status == 200
    assert result["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(result.content.decode())))
    assert rows[0] == ["scanCode"]
    assert sorted(r[0] for r in rows[1:]) == sorted(
        Code.objects.filter(code_type=ct).values_list("scan_code", flat=True)
    )


def test_unknown_jobs_are_job_not_found(server_api):
    for job_id in [str(uuid.uuid4()), "not-a-uuid"]:
        _is(server_api.get(f"/api/v1/server/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
        _is(server_api.get(f"/api/v1/server/jobs/{job_id}/result.csv"), 404, "JOB_NOT_FOUND")


def _import(server_api, name: str, body: bytes, **kwargs):
    return server_api.post(f"{TYPES}/{name}/import", data=body, content_type="text/csv", **kwargs)


def test_an_import_job_commits_good_lines_and_lists_bad_ones(server_api):
    ct = CodeTypeFactory()
    CodeFactory(scan_code="EXISTING-0001")
    csv_body = (
        b"scanCode,codeState,customCodeInfo\n"
        b"IMPORT-0001,Available,\n"
        b'IMPORT-0002,Inactive,"{""sku"": 1}"\n'
        b"IMPORT-0001\n"
        b"existing 0001\n"
        b"x!\n"
    )

    started = _import(server_api, ct.name, csv_body)

    assert started.status == 202
    assert started.json()["kind"] == "import"
    bulk.run_job(started.json()["jobId"])
    job = server_api.get(started["Location"]).json()
    assert job["status"] == "succeeded"
    assert {(e["line"], e["code"]) for e in job["errors"]} == {
        (4, "REDEMPTION_CODE_DUPLICATE"),
        (5, "REDEMPTION_CODE_DUPLICATE"),
        (6, "INVALID_SCAN_CODE"),
    }
    assert job["resultUrl"] is None
    assert sorted(Code.objects.filter(code_type=ct).values_list("scan_code", "state")) == [
        ("IMPORT-0001", "Available"),
        ("IMPORT-0002", "Inactive"),
    ]


def test_import_refusals(server_api):
    shared = SharedCodeTypeFactory()
    ct = CodeTypeFactory()
    _is(_import(server_api, "nope", b"ABCD-0001\n"), 404, "REDEMPTION_CODE_TYPE_NOT_FOUND")
    _is(
        _import(server_api, shared.name, b"ABCD-0001\n"),
        409,
        "REDEMPTION_CODE_TYPE_MUST_BE_SINGLE_USE",
    )
    json_body = server_api.post(f"{TYPES}/{ct.name}/import", {"scanCode": "ABCD-0001"})
    assert json_body.error["details"]["fields"] == {"Content-Type": "must be text/csv (UTF-8)"}
    assert not Job.objects.exists()


def test_an_import_is_idempotent_by_its_streamed_body(server_api):
    ct = CodeTypeFactory()
    key = {"Idempotency-Key": "import-1"}

    first = _import(server_api, ct.name, b"IDEM-0001\n", headers=key)
    again = _import(server_api, ct.name, b"IDEM-0001\n", headers=key)
    other = _import(server_api, ct.name, b"IDEM-0002\n", headers=key)

    assert (first.status, again.status) == (202, 202)
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again["Location"] == first["Location"]
    _is(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert Job.objects.count() == 1


def test_the_job_result_neutralises_cells_a_spreadsheet_would_run(server_api, ops):
    ct = CodeTypeFactory()
    job = bulk.job_generate_start(actor=ops, code_type_name=ct.name, quantity=3, prefix="-ab")
    bulk.run_job(job.pk)

    response = server_api.get(f"/api/v1/server/jobs/{job.pk}/result.csv")

    rows = response.content.decode().splitlines()
    assert response.status == 200
    assert rows[0] == "scanCode"
    assert len(rows) == 4
    assert all(row.startswith("'-AB-") for row in rows[1:]), rows
