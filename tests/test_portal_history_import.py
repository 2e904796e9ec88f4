"""The portal's import page: the preserveState checkbox, for Ops only."""

import io

import pytest
from django.urls import reverse

from redemption.models import Code, Job, SharedRedemption
from redemption.services import bulk
from tests.factories import CodeTypeFactory, SharedCodeTypeFactory


def _upload(text: str):
    upload = io.BytesIO(text.encode())
    upload.name = "history.csv"
    return upload


@pytest.mark.django_db
def test_ops_imports_a_history_with_the_checkbox(client, ops_user):
    ct = CodeTypeFactory()
    client.force_login(ops_user)
    url = reverse("redemption:code_import", args=[ct.name])

    page = client.get(url)
    assert 'name="preserve_state"' in page.content.decode()
    assert "Preserve state and history" in page.content.decode()
    response = client.post(
        url,
        {
            "file": _upload(
                "scanCode,codeState,redeemedByProfileId,redeemedAt\n"
                "PRTL-0001,Redeemed,p-9,2025-05-05T05:05:05.000Z\n"
            ),
            "preserve_state": "on",
        },
    )

    job = Job.objects.get(kind=Job.Kind.IMPORT)
    assert response["Location"] == reverse("redemption:job_detail", args=[job.pk])
    assert job.params["preserveState"] is True
    bulk.run_job(job.pk)
    code = Code.objects.get(canonical="PRT10001")
    assert (code.state, code.redeemed_by_profile_id) == ("Redeemed", "p-9")


@pytest.mark.django_db
def test_without_the_checkbox_a_history_line_is_a_line_error(client, ops_user):
    ct = CodeTypeFactory()
    client.force_login(ops_user)
    client.post(
        reverse("redemption:code_import", args=[ct.name]),
        {"file": _upload("PRTL-0002,Redeemed\n")},
    )

    job = Job.objects.get(kind=Job.Kind.IMPORT)
    assert job.params.get("preserveState") is None
    bulk.run_job(job.pk)
    job.refresh_from_db()
    assert [e["line"] for e in job.errors] == [1]
    assert not Code.objects.filter(canonical="PRT10002").exists()


@pytest.mark.django_db
def test_a_shared_type_offers_the_import_and_needs_the_checkbox(client, ops_user):
    ct = SharedCodeTypeFactory(scan_code="SUMMER-FUN")
    client.force_login(ops_user)
    detail = client.get(reverse("redemption:code_type_detail", args=[ct.name]))
    assert reverse("redemption:code_import", args=[ct.name]) in detail.content.decode()
    url = reverse("redemption:code_import", args=[ct.name])
    rows = "scanCode,codeState,profileId,redeemedAt\nSUMMER-FUN,Redeemed,p-1,2025-01-01T00:00:00Z\n"

    refused = client.post(url, {"file": _upload(rows)})
    accepted = client.post(url, {"file": _upload(rows), "preserve_state": "on"})

    assert refused.status_code == 200
    assert "This operation needs a personal (SINGLE) code type." in refused.content.decode()
    assert accepted.status_code == 302
    bulk.run_job(Job.objects.get().pk)
    assert SharedRedemption.objects.get(code_type=ct).profile_id == "p-1"


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["support_user", "viewer_user"])
def test_support_and_viewers_are_refused_on_the_server(client, request, who):
    ct = CodeTypeFactory()
    client.force_login(request.getfixturevalue(who))

    response = client.post(
        reverse("redemption:code_import", args=[ct.name]),
        {"file": _upload("scanCode,codeState\nPRTL-0003,Available\n"), "preserve_state": "on"},
    )

    assert response.status_code == 403
    assert "Your role does not allow this page or action" in response.content.decode()
    assert not Job.objects.exists()
