"""Hostile JSON bodies get 400 with the envelope on every endpoint that takes JSON."""

import re
import uuid

import pytest

from redemption.api import auth
from redemption.api.endpoints import ENDPOINTS

pytestmark = pytest.mark.django_db

PATH_VALUES = {
    "codeType": "no-such-type",
    "scanCode": "ABCD-1234",
    "redemptionCodeId": str(uuid.UUID(int=1)),
    "jobId": str(uuid.UUID(int=2)),
}
JSON_OPERATIONS = [
    pytest.param(
        op.method,
        re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], endpoint.template),
        op.auth,
        id=op.operation_id,
    )
    for endpoint in ENDPOINTS
    for op in endpoint.operations
    if op.body is not None
]
DEEP = "[" * 40 + "]" * 40
HOSTILE_BODIES = [
    pytest.param(b'{"a": 1, "a": 2}', "body", "duplicate key", id="duplicate-keys"),
    pytest.param(b'{"a": 1e999999}', "a", "finite", id="infinite-number"),
    pytest.param(b'{"a": -1e999999}', "a", "finite", id="minus-infinite-number"),
    pytest.param(b'{"a": ' + b"9" * 5000 + b"}", "body", "digits", id="huge-integer"),
    pytest.param(b'{"a": ' + DEEP.encode() + b"}", "a", "nest", id="deep-nesting"),
    pytest.param(b'{"a": ' + b"[" * 100_000 + b"}", "body", "nest", id="recursion"),
    pytest.param(b'{"a": "x\\u0000y"}', "a", "NUL", id="nul-escape"),
    pytest.param(b'{"a": {"b": ["\\ud800"]}}', "a", "surrogates", id="lone-surrogate"),
    pytest.param(b'{"\\udfff": 1}', "body", "surrogates", id="lone-surrogate-key"),
    pytest.param(b'{"a\\u0000": 1}', "body", "NUL", id="nul-in-key"),
    pytest.param(b'{"a": NaN}', "body", "NaN", id="nan"),
    pytest.param(b'{"a": Infinity}', "body", "Infinity", id="infinity-literal"),
]


@pytest.fixture
def clients(server_api, user_api):
    return {auth.SERVER: server_api, auth.CLIENT: user_api}


@pytest.mark.parametrize(("method", "path", "auth_kind"), JSON_OPERATIONS)
@pytest.mark.parametrize(("raw", "field", "words"), HOSTILE_BODIES)
def test_hostile_json_is_400_with_the_envelope(clients, method, path, auth_kind, raw, field, words):
    response = clients[auth_kind].request(method, path, data=raw, content_type="application/json")

    assert (response.status, response.code) == (400, "INVALID_PARAMETER_VALUE"), response.content
    assert response.error["reasonCode"] == 40660
    assert words in response.error["details"]["fields"][field]
