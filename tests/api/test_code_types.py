"""Code types over the server API: list, create, read, partial update."""

import pytest

from redemption import rules
from redemption.models import CodeType
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

TYPES = "/api/v1/server/code-types"


def _is(response, status, code):
    assert (response.status, response.code) == (status, code), response.json()


def test_list_code_types_with_their_state_counts(server_api):
    ct = CodeTypeFactory(name="alpha")
    CodeFactory(code_type=ct, state="Available")
    CodeFactory(code_type=ct, state="Inactive")
    SharedCodeTypeFactory(name="beta")

    response = server_api.get(TYPES)

    types = response.json()["codeTypes"]
    assert [t["codeType"] for t in types] == ["alpha", "beta"]
    assert types[0]["stateCounts"]["Available"] == 1
    assert types[0]["stateCounts"]["Inactive"] == 1
    assert types[1]["codeUseType"] == "MULTI"


def test_create_a_personal_type(server_api):
    response = server_api.post(TYPES, {"codeType": "xmas-2026", "description": "Gifts"})

    assert response.status == 201
    body = response.json()
    assert (body["codeType"], body["codeUseType"], body["scanCode"]) == (
        "xmas-2026",
        "SINGLE",
        None,
    )
    assert body["version"] == 1
    assert body["stateCounts"] == dict.fromkeys(
        ["Inactive", "Available", "InProgress", "Redeemed", "Invalidated", "Failed"], 0
    )


def test_create_a_shared_type_with_everything(server_api):
    response = server_api.post(
        TYPES,
        {
            "codeType": "promo.1",
            "codeUseType": "MULTI",
            "scanCode": "free stuff",
            "validStart": "2026-01-01T00:00:00Z",
            "validEnd": "2027-01-01T00:00:00.5+00:00",
            "maxRedemptions": 100,
            "customCodeInfo": {"coins": 50},
            "isDisabled": False,
            "fulfillment": {"url": "https://shop.example/hook", "async": True, "maxRetries": 2},
        },
    )

    body = response.json()
    assert response.status == 201
    assert body["scanCode"] == "FREE STUFF"
    assert body["validEnd"] == "2027-01-01T00:00:00.500Z"
    assert body["fulfillment"] == {
        "url": "https://shop.example/hook",
        "async": True,
        "maxRetries": 2,
        "timeoutSeconds": 30,
    }
    assert "webhookSecret" not in body


def test_create_refusals(server_api):
    CodeTypeFactory(name="taken")
    SharedCodeTypeFactory(scan_code="USEDCODE")

    _is(server_api.post(TYPES, {"codeType": "taken"}), 409, "REDEMPTION_CODE_TYPE_DUPLICATE")
    _is(
        server_api.post(TYPES, {"codeType": "s2", "codeUseType": "MULTI", "scanCode": "usedcode"}),
        409,
        "REDEMPTION_CODE_DUPLICATE",
    )
    _is(
        server_api.post(TYPES, {"codeType": "s3", "codeUseType": "MULTI", "scanCode": "a!"}),
        400,
        "INVALID_SCAN_CODE",
    )
    no_scan = server_api.post(TYPES, {"codeType": "s4", "codeUseType": "MULTI"})
    assert list(no_scan.error["details"]["fields"]) == ["scanCode"]
    window = server_api.post(
        TYPES,
        {
            "codeType": "s5",
            "validStart": "2026-02-01T00:00:00Z",
            "validEnd": "2026-01-01T00:00:00Z",
        },
    )
    assert list(window.error["details"]["fields"]) == ["validEnd"]
    assert list(server_api.post(TYPES, {}).error["details"]["fields"]) == ["codeType"]
    assert not CodeType.objects.filter(name__startswith="s").exists()


@pytest.mark.parametrize("name", [".", "..", "has space", "x" * 65])
def test_the_api_field_refuses_a_name_the_rule_refuses(server_api, name):
    response = server_api.post(TYPES, {"codeType": name})

    _is(response, 400, "INVALID_PARAMETER_VALUE")
    assert response.error["details"]["fields"] == {
        "codeType": f"must be {rules.CODE_TYPE_NAME_RULE}"
    }
    assert not CodeType.objects.exists()


def test_get_one_code_type(server_api):
    ct = CodeTypeFactory(name="one.type")

    response = server_api.get(f"{TYPES}/one.type")

    assert response.json()["codeType"] == ct.name
    _is(server_api.get(f"{TYPES}/other"), 404, "REDEMPTION_CODE_TYPE_NOT_FOUND")


def test_patch_changes_only_the_fields_given(server_api):
    CodeTypeFactory(name="p1", description="old", is_disabled=False)

    response = server_api.patch(f"{TYPES}/p1", {"isDisabled": True, "validEnd": None})

    body = response.json()
    assert response.status == 200
    assert (body["isDisabled"], body["description"], body["version"]) == (True, "old", 2)
    cleared = server_api.patch(f"{TYPES}/p1", {"description": None, "fulfillment": None})
    assert cleared.json()["description"] == ""


def test_patch_with_a_stale_version_is_a_version_mismatch(server_api):
    CodeTypeFactory(name="p2")
    assert server_api.patch(f"{TYPES}/p2", {"description": "a", "version": 1}).status == 200

    stale = server_api.patch(f"{TYPES}/p2", {"description": "b", "version": 1})

    _is(stale, 409, "REDEMPTION_CODE_VERSION_MISMATCH")
    assert CodeType.objects.get(name="p2").description == "a"


def test_patch_refusals(server_api):
    SharedCodeTypeFactory(name="shared", scan_code="MINE0001")
    SharedCodeTypeFactory(name="other", scan_code="THEIRS01")
    CodeTypeFactory(name="personal")

    fixed = server_api.patch(f"{TYPES}/shared", {"codeType": "renamed", "codeUseType": "SINGLE"})
    assert fixed.error["details"]["fields"] == {
        "codeType": "cannot be changed",
        "codeUseType": "cannot be changed",
    }
    _is(server_api.patch(f"{TYPES}/nope", {}), 404, "REDEMPTION_CODE_TYPE_NOT_FOUND")
    _is(
        server_api.patch(f"{TYPES}/shared", {"scanCode": "theirs01"}),
        409,
        "REDEMPTION_CODE_DUPLICATE",
    )
    _is(server_api.patch(f"{TYPES}/shared", {"scanCode": "!!"}), 400, "INVALID_SCAN_CODE")
    cap = server_api.patch(f"{TYPES}/personal", {"maxRedemptions": 5})
    assert list(cap.error["details"]["fields"]) == ["maxRedemptions"]
    assert CodeType.objects.get(name="shared").scan_code == "MINE0001"
