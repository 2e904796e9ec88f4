"""Generated requests (methods, paths, headers, bodies, path and query values) never get a 500.

Every response also passes the OpenAPI check of the `api` fixture. Bodies never carry a
`fulfillment` object: a code type with a webhook would make these tests call random URLs.
"""

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from redemption.api.endpoints import ENDPOINTS
from redemption.api.validation import Field
from tests.api.conftest import mint
from tests.factories import CodeFactory, CodeTypeFactory, SharedCodeTypeFactory

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
FIELD_NAMES = sorted(
    {f.name for e in ENDPOINTS for op in e.operations for f in (op.body or ())} - {"fulfillment"}
)
JSON_OPERATIONS = [(e, op) for e in ENDPOINTS for op in e.operations if op.body is not None]
GET_OPERATIONS = [e.template for e in ENDPOINTS for op in e.operations if op.method == "GET"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture
def world(db, settings, tmp_path) -> dict[str, Any]:
    """Data the generated requests can hit, and both kinds of credential."""
    from redemption.actors import Actor
    from redemption.services import keys

    settings.MEDIA_ROOT = str(tmp_path)
    ct = CodeTypeFactory(name="gen-type")
    shared = SharedCodeTypeFactory(name="gen-shared", scan_code="GENSHARED")
    codes = [CodeFactory(code_type=ct, scan_code=f"GEN-{i:04d}-CODE") for i in range(5)]
    _, secret = keys.server_key_create(actor=Actor.system("test"), name="gen")
    return {
        "server": secret,
        "token": mint("p-gen"),
        "names": [ct.name, shared.name],
        "scans": [c.scan_code for c in codes] + ["GENSHARED"],
        "ids": [str(c.pk) for c in codes],
    }


def _credential(world: dict[str, Any]) -> st.SearchStrategy[str | None]:
    return st.sampled_from([None, world["server"], world["token"]]) | st.text(max_size=60)


def _path_value(world: dict[str, Any]) -> st.SearchStrategy[str]:
    known = st.sampled_from(world["names"] + world["scans"] + world["ids"] + ["p-gen"])
    return st.one_of(known, known, st.text(max_size=80))


def _fill(template: str, values: list[str]) -> str:
    out = template
    for value in values:
        start = out.find("{")
        if start < 0:
            break
        end = out.index("}", start)
        out = out[:start] + quote(value, safe="") + out[end + 1 :]
    return out


def _field_value(world: dict[str, Any]) -> st.SearchStrategy[Any]:
    return (
        st.sampled_from(
            [
                *world["names"],
                *world["scans"],
                "Available",
                "Inactive",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00",
                1,
                3600,
                {},
                {"success": True, "complete": True},
            ]
        )
        | json_values
    )


def _plausible(f: Field, world: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the right kind, mostly in range, so that requests reach the services."""
    if f.kind == "integer":
        low = f.min if f.min is not None else 0
        high = min(f.max if f.max is not None else low + 50, low + 50)
        return st.integers(min_value=low, max_value=high) | st.sampled_from([low - 1, high + 1])
    if f.kind == "boolean":
        return st.booleans()
    if f.kind == "enum":
        return st.sampled_from(f.choices)
    if f.kind == "datetime":
        return st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ).map(datetime.isoformat) | st.just("2026-01-01T00:00:00")
    if f.kind == "object":
        inner = f.inner or f.inner_doc
        if inner:
            return st.fixed_dictionaries({}, optional={i.name: _plausible(i, world) for i in inner})
        return st.dictionaries(st.text(max_size=5), scalars, max_size=3)
    if f.name == "codeType":
        return st.one_of(*[st.sampled_from(world["names"])] * 3, st.text(max_size=70))
    if f.name == "scanCode":
        return st.one_of(*[st.sampled_from(world["scans"])] * 3, st.text(max_size=90))
    return st.text(max_size=(f.max or 40) + 2)


def _body(
    fields: tuple[Field, ...], world: dict[str, Any], *, clean: bool
) -> st.SearchStrategy[dict[str, Any]]:
    """A body of the operation's own fields: plausible values only, or mixed with junk."""

    def value(f: Field) -> st.SearchStrategy[Any]:
        good = _plausible(f, world)
        return good if clean else st.one_of(good, good, _field_value(world))

    usable = [f for f in fields if f.name != "fulfillment"]
    planned = st.fixed_dictionaries(
        {f.name: value(f) for f in usable if f.required},
        optional={f.name: value(f) for f in usable if not f.required},
    )
    names = st.sampled_from(FIELD_NAMES) | st.text(max_size=8)
    if clean:
        return planned
    noise = st.dictionaries(names, json_values, max_size=1)
    return st.tuples(planned, noise).map(lambda t: {**t[0], **t[1]})


def _send(api, method, path, *, credential, body, content_type, key):
    headers = {}
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    if key is not None:
        headers["Idempotency-Key"] = key
    response = api.request(method, path, data=body, content_type=content_type, headers=headers)
    event(f"{response.status} {response.code if response.status >= 400 else ''}")
    return response


@PROPERTY
@given(data=st.data())
def test_any_request_gets_a_documented_answer(api, world, data):
    endpoint = data.draw(st.sampled_from(ENDPOINTS))
    own = [op.method for op in endpoint.operations]
    method = data.draw(st.sampled_from(own) | st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    template = data.draw(
        st.sampled_from([endpoint.template] * 3 + ["/api/v1/{x}", "/api/v1/{x}/{y}"])
    )
    path = _fill(template, data.draw(st.lists(_path_value(world), min_size=2, max_size=2)))
    body = data.draw(
        st.binary(max_size=200)
        | json_values.map(lambda v: json.dumps(v).encode())
        | st.dictionaries(st.sampled_from(FIELD_NAMES), _field_value(world), max_size=5).map(
            lambda v: json.dumps(v).encode()
        )
    )
    response = _send(
        api,
        method,
        path,
        credential=data.draw(_credential(world)),
        body=body,
        content_type=data.draw(st.sampled_from(["application/json", "text/csv", "text/plain", ""])),
        key=data.draw(st.none() | st.text(max_size=300)),
    )
    assert response.status < 500


@PROPERTY
@given(data=st.data())
def test_generated_json_bodies_never_break_an_endpoint(api, world, data):
    endpoint, op = data.draw(st.sampled_from(JSON_OPERATIONS))
    credential = world["token"] if op.auth == "client" else world["server"]
    path = _fill(endpoint.template, [data.draw(_path_value(world))])
    response = _send(
        api,
        op.method,
        path,
        credential=credential,
        body=json.dumps(data.draw(_body(op.body, world, clean=data.draw(st.booleans())))).encode(),
        content_type="application/json",
        key=data.draw(st.none() | st.sampled_from(["k1", "k2"])),
    )
    assert response.status < 500


@PROPERTY
@given(data=st.data())
def test_generated_path_and_query_values_never_break_a_read(api, world, data):
    template = data.draw(st.sampled_from(GET_OPERATIONS))
    credential = world["token"] if "/client/" in template else world["server"]
    path = _fill(template, [data.draw(_path_value(world))])
    query = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["codeType", "page"]) | st.text(max_size=8),
                _path_value(world),
            ),
            max_size=3,
        )
    )
    if query:
        path += "?" + urlencode(query)
    response = _send(api, "GET", path, credential=credential, body=b"", content_type="", key=None)
    assert response.status < 500
