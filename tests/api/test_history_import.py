"""`?preserveState=true` on the import endpoint: a migration import with history."""

import pytest

from redemption.models import Code, Job, SharedRedemption
from redemption.services import bulk
from tests.factories import CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

TYPES = "/api/v1/server/code-types"


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _import(server_api, name: str, body: bytes, query: str = "?preserveState=true"):
    return server_api.post(f"{TYPES}/{name}/import{query}", data=body, content_type="text/csv")


def test_preserve_state_imports_the_history_of_personal_and_shared_types(server_api):
    ct = CodeTypeFactory()
    shared = SharedCodeTypeFactory(scan_code="API-PROMO")

    personal = _import(
        server_api,
        ct.name,
        b"scanCode,codeState,redeemedByProfileId,redeemedAt,invalidationReason\n"
        b"APIH-0001,Redeemed,p-1,2025-01-02T03:04:05.678Z,\n"
        b"APIH-0002,Invalidated,,,fraud\n",
    )
    redemptions = _import(
        server_api,
        shared.name,
        b"profileId,codeState,redeemedAt\np-1,Redeemed,2025-01-02T03:04:05Z\n",
    )

    assert (personal.status, redemptions.status) == (202, 202)
    for started in (personal, redemptions):
        bulk.run_job(started.json()["jobId"])
        job = server_api.get(started["Location"]).json()
        assert (job["status"], job["errors"]) == ("succeeded", [])
    assert sorted(
        Code.objects.filter(code_type=ct).values_list(
            "scan_code", "state", "redeemed_by_profile_id", "invalidation_reason"
        )
    ) == [("APIH-0001", "Redeemed", "p-1", None), ("APIH-0002", "Invalidated", None, "fraud")]
    assert SharedRedemption.objects.get(code_type=shared).state == "Redeemed"


def test_false_or_absent_preserve_state_is_a_plain_import(server_api):
    ct = CodeTypeFactory()
    for query in ("", "?preserveState=false"):
        started = _import(server_api, ct.name, b"APIH-0003,Redeemed\n", query)
        assert started.status == 202
        bulk.run_job(started.json()["jobId"])
        assert Job.objects.get(pk=started.json()["jobId"]).errors[0]["line"] == 1
    assert not Code.objects.filter(code_type=ct).exists()


def test_a_bad_preserve_state_value_is_refused(server_api):
    ct = CodeTypeFactory()
    refused = _import(server_api, ct.name, b"APIH-0004\n", "?preserveState=maybe")
    assert (refused.status, refused.code) == (400, "INVALID_PARAMETER_VALUE")
    assert not Job.objects.exists()
