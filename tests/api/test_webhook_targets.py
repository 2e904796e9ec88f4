"""Webhook targets over the API: 400 FULFILLMENT_URL_FORBIDDEN, and no transport detail for
end users (staff read it on the attempt)."""

import pytest

from redemption.models import CodeType
from tests.api.conftest import mint
from tests.factories import CodeFactory, CodeTypeFactory
from tests.webhook import closed_port_url

TYPES = "/api/v1/server/code-types"


@pytest.fixture
def rule_on(settings):
    settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS = False
    settings.FULFILLMENT_ALLOW_HTTP = True


def _fulfillment(url: str) -> dict:
    return {"url": url, "async": False, "maxRetries": 0, "timeoutSeconds": 5}


@pytest.mark.django_db
def test_an_ipv6_literal_is_not_a_webhook_url_the_api_takes(server_api, rule_on):
    # The documented URL shape names hosts and dotted IPv4 only; the target rules refuse every
    # IPv6 literal too (tests/test_webhook_targets.py), so the field check answers first.
    response = server_api.post(
        TYPES, {"codeType": "grab", "fulfillment": _fulfillment("http://[::1]:5432/")}
    )

    assert (response.status, response.code) == (400, "INVALID_PARAMETER_VALUE")
    assert "fulfillment.url" in response.error["details"]["fields"]
    assert not CodeType.objects.filter(name="grab").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/", "http://0x7f000001/", "http://127.1/"])
def test_creating_a_type_with_a_forbidden_url_is_400(server_api, rule_on, url):
    response = server_api.post(TYPES, {"codeType": "grab", "fulfillment": _fulfillment(url)})

    assert (response.status, response.code) == (400, "FULFILLMENT_URL_FORBIDDEN")
    assert response.error["reasonCode"] == 40833
    assert "not allowed" in response.error["details"]["fields"]["fulfillment.url"]
    assert not CodeType.objects.filter(name="grab").exists()


@pytest.mark.django_db
def test_patching_a_type_to_a_forbidden_url_is_400(server_api, rule_on):
    ct = CodeTypeFactory()

    response = server_api.patch(
        f"{TYPES}/{ct.name}", {"fulfillment": _fulfillment("http://169.254.169.254/")}
    )

    assert (response.status, response.code) == (400, "FULFILLMENT_URL_FORBIDDEN")
    ct.refresh_from_db()
    assert ct.fulfillment_url == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("refused", [True, False], ids=["refused-target", "connection-refused"])
def test_end_users_get_a_generic_502_while_staff_see_the_detail(api, server_api, refused, settings):
    settings.FULFILLMENT_ALLOW_PRIVATE_NETWORKS = not refused
    url = closed_port_url()
    port = url.rsplit(":", 1)[1].split("/")[0]
    code = CodeFactory(code_type=CodeTypeFactory(fulfillment_url=url, webhook_secret="whsec_t"))

    response = api.as_(mint()).post("/api/v1/client/redeem", {"scanCode": code.scan_code})

    assert (response.status, response.code) == (502, "REDEMPTION_CODE_SCRIPT_FAILURE")
    assert response.error["details"] == {"attempt": 1}
    for leak in ("127.0.0.1", port, "refused", "Connection", "loopback", "transport"):
        assert leak not in response.content.decode()
    lookup = server_api.get(f"/api/v1/server/codes/{code.scan_code}").json()
    detail = lookup["attempts"][0]["errorMsg"]
    assert ("loopback" if refused else "ConnectionRefusedError") in detail
