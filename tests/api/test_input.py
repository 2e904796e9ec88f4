"""Strict input: body size, media type, JSON, unknown fields, types, ranges, paths, methods."""

import pytest

from redemption.models import AuditEvent, Code, CodeType
from tests.factories import CodeFactory, CodeTypeFactory

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


def _fields(response) -> dict[str, str]:
    assert (response.status, response.code) == (400, "INVALID_PARAMETER_VALUE"), response.json()
    assert response.error["reasonCode"] == 40660
    return response.error["details"]["fields"]


def test_a_body_over_1_mib_is_413(server_api):
    padding = "x" * MIB
    response = server_api.post("/api/v1/server/user-tokens", {"profileId": "p", "pad": padding})

    assert (response.status, response.code) == (413, "REQUEST_TOO_LARGE")
    assert response.error["reasonCode"] == 40830


def test_an_import_over_200_mib_is_413_without_reading_it(server_api):
    ct = CodeTypeFactory()
    response = server_api.post(
        f"/api/v1/server/code-types/{ct.name}/import",
        data=b"ABCD-EFGH\n",
        content_type="text/csv",
        CONTENT_LENGTH=str(200 * MIB + 1),
    )
    assert (response.status, response.code) == (413, "REQUEST_TOO_LARGE")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""],
)
def test_json_endpoints_need_a_json_content_type(server_api, content_type):
    response = server_api.post(
        "/api/v1/server/user-tokens", data=b'{"profileId": "p"}', content_type=content_type
    )
    assert _fields(response) == {"Content-Type": "must be application/json (UTF-8)"}


def test_a_utf8_charset_parameter_is_fine(server_api):
    response = server_api.post(
        "/api/v1/server/user-tokens",
        data=b'{"profileId": "p"}',
        content_type="application/json; charset=UTF-8",
    )
    assert response.status == 201


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[]",
        b'"text"',
        b"null",
        b'{"profileId": NaN}',
        b'{"profileId": "p", "profileId": "q"}',
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_json_is_400_with_body_named(server_api, raw):
    response = server_api.post(
        "/api/v1/server/user-tokens", data=raw, content_type="application/json"
    )
    fields = _fields(response)
    assert fields, fields


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\x00b", "NUL"),
        ("\ud800", "surrogates"),
    ],
)
def test_strings_no_database_can_store_are_refused_anywhere_in_the_body(server_api, value, problem):
    ct = CodeTypeFactory()
    response = server_api.post(
        "/api/v1/server/codes",
        {"scanCode": "ABCD-1234", "codeType": ct.name, "customCodeInfo": {"deep": [{"k": value}]}},
    )
    assert problem in _fields(response)["customCodeInfo"]
    assert not Code.objects.exists()


def test_nesting_deeper_than_32_levels_is_refused(server_api):
    ct = CodeTypeFactory()
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["n"] = {}
        node = node["n"]
    response = server_api.post(
        "/api/v1/server/codes",
        {"scanCode": "ABCD-1234", "codeType": ct.name, "customCodeInfo": deep},
    )
    assert "nest" in _fields(response)["customCodeInfo"]


def test_every_bad_field_is_named_at_once(server_api):
    response = server_api.post(
        "/api/v1/server/code-types",
        {
            "codeType": "has space",
            "codeUseType": "TRIPLE",
            "validStart": "2026-01-01T00:00:00",
            "validEnd": "yesterday",
            "maxRedemptions": 2**31,
            "isDisabled": "no",
            "fulfillment": {"url": "ftp://x", "maxRetries": 11, "secret": "x"},
            "redemptionCount": 3,
        },
    )
    assert set(_fields(response)) == {
        "codeType",
        "codeUseType",
        "validStart",
        "validEnd",
        "maxRedemptions",
        "isDisabled",
        "fulfillment.url",
        "fulfillment.maxRetries",
        "fulfillment.secret",
        "redemptionCount",
    }
    assert not CodeType.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="code_type").exists()


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01",
        "2026-13-01T00:00:00Z",
        1767225600,
        "0001-01-01T00:00:00+01:00",
        "0999-01-01T00:00:00Z",
        "9999-12-31T23:00:00-05:00",
    ],
)
def test_timestamps_must_be_iso_8601_with_a_zone(server_api, value):
    response = server_api.post("/api/v1/server/code-types", {"codeType": "t1", "validStart": value})
    assert list(_fields(response)) == ["validStart"]


def test_timestamps_with_an_offset_are_stored_in_utc(server_api):
    response = server_api.post(
        "/api/v1/server/code-types",
        {"codeType": "t1", "validStart": "2026-06-01T12:00:00+02:00", "validEnd": None},
    )
    assert response.status == 201
    assert response.json()["validStart"] == "2026-06-01T10:00:00.000Z"


def test_unknown_and_repeated_query_parameters_are_refused(server_api, user_api):
    assert _fields(server_api.get("/api/v1/server/code-types?page=2")) == {"page": "unknown field"}
    repeated = user_api.get("/api/v1/client/redeemed-codes?codeType=a&codeType=b")
    assert _fields(repeated) == {"codeType": "may be given only once"}
    bad = user_api.get("/api/v1/client/redeemed-codes?codeType=%00")
    assert "codeType" in _fields(bad) or "body" in _fields(bad)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/",
        "/api/v1/nope",
        "/api/v1/client/redeem/",
        "/api/v1/server/codes/ABCD/explode",
        "/api/v1/server/jobs/",
    ],
)
def test_unknown_api_paths_are_404_not_found(api, path):
    for method in ["GET", "POST", "DELETE"]:
        response = api.request(method, path)
        assert (response.status, response.code) == (404, "NOT_FOUND")
        assert response.error["reasonCode"] == 40404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/client/redeem", "POST"),
        ("DELETE", "/api/v1/server/code-types", "GET, POST"),
        ("PUT", "/api/v1/server/code-types/x", "GET, PATCH, DELETE"),
        ("POST", "/api/v1/server/codes/ABCD-EFGH", "GET"),
        ("PATCH", "/api/v1/openapi.json", "GET"),
    ],
)
def test_a_method_the_path_does_not_offer_is_405_with_allow(api, method, path, allowed):
    response = api.request(method, path)

    assert (response.status, response.code) == (405, "METHOD_NOT_ALLOWED")
    assert response.error["reasonCode"] == 40831
    assert response["Allow"] == allowed


def test_a_code_type_name_that_cannot_exist_in_the_path_is_not_found(server_api):
    for name in ["has%20space", "%00", "x" * 65]:
        response = server_api.get(f"/api/v1/server/code-types/{name}")
        assert (response.status, response.code) == (404, "REDEMPTION_CODE_TYPE_NOT_FOUND")


def test_a_scan_code_in_the_path_may_be_spelled_any_way(server_api):
    code = CodeFactory(scan_code="K7QM-3XJ9-AAAA")
    response = server_api.get("/api/v1/server/codes/k7qm%203xj9%20aaaa")
    assert response.status == 200
    assert response.json()["redemptionCodeId"] == str(code.pk)
    nul = server_api.get("/api/v1/server/codes/AB%00CD")
    assert (nul.status, nul.code) == (400, "INVALID_SCAN_CODE")


def test_an_idempotency_key_must_be_1_to_255_printable_characters(server_api):
    for key in ["", "x" * 256, "tab\there"]:
        response = server_api.post(
            "/api/v1/server/user-tokens", {"profileId": "p"}, headers={"Idempotency-Key": key}
        )
        assert _fields(response) == {"Idempotency-Key": "1-255 printable ASCII characters"}
    ok = server_api.post(
        "/api/v1/server/user-tokens", {"profileId": "p"}, headers={"Idempotency-Key": "x" * 255}
    )
    assert ok.status == 201
