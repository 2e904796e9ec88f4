"""The OpenAPI document matches the URL configuration, and is served as it is built."""

import json
import re
from typing import Any

import pytest
from django.urls import resolve
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from redemption import exceptions as exc
from redemption.api import openapi
from redemption.api.endpoints import ENDPOINTS

pytestmark = pytest.mark.django_db

DOC = openapi.document()
SAMPLE = {
    "codeType": "xmas-2026",
    "scanCode": "ABCD-EFGH",
    "jobId": "7d0f3a4e-58a5-4d5f-9a3c-0a0b0c0d0e0f",
    "profileId": "p-42",
    "redemptionCodeId": "7d0f3a4e-58a5-4d5f-9a3c-0a0b0c0d0e0f",
}
METHODS = {"get", "put", "post", "patch", "delete"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_document_is_served_as_built(api):
    response = api.get("/api/v1/openapi.json")

    assert response.status == 200
    assert response.json() == json.loads(json.dumps(DOC))
    assert response.json()["openapi"] == "3.1.0"


def test_every_schema_is_valid_json_schema_2020_12_and_every_ref_resolves():
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    resolver = (
        Registry()
        .with_resource("urn:doc", Resource(contents=DOC, specification=DRAFT202012))
        .resolver("urn:doc")
    )
    for ref in set(_refs(DOC)):
        assert resolver.lookup(ref).contents is not None, ref


def test_every_documented_api_path_and_method_is_routed_and_nothing_else():
    documented = {p: ops for p, ops in DOC["paths"].items() if p.startswith("/api/v1/")}
    assert set(documented) == {e.template for e in ENDPOINTS}
    for endpoint in ENDPOINTS:
        url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], endpoint.template)
        match = resolve(url)
        assert match.url_name == endpoint.name, url
        assert set(documented[endpoint.template]) & METHODS == {
            op.method.lower() for op in endpoint.operations
        }
    assert resolve("/api/v1/anything/else").url_name == "not_found"


def test_operation_ids_are_unique_and_every_operation_documents_its_failures():
    ids = []
    for path, operations in DOC["paths"].items():
        for method, operation in operations.items():
            ids.append(operation.get("operationId", f"{method} {path}"))
            assert "500" in operation["responses"] or not path.startswith("/api/")
            if operation.get("security"):
                assert {"401", "503"} <= set(operation["responses"]), (method, path)
            if method == "post":
                assert {"409", "422"} <= set(operation["responses"]), (method, path)
                names = [p["name"] for p in operation["parameters"]]
                assert "Idempotency-Key" in names
    assert len(ids) == len(set(ids))


def test_every_error_schema_matches_the_error_class():
    schemas = DOC["components"]["schemas"]
    for cls in openapi.ALL_ERRORS:
        error = schemas[f"Error_{cls.code}"]["properties"]["error"]["properties"]
        assert error["code"] == {"const": cls.code}
        assert error["reasonCode"] == {"const": cls.reason_code}
    assert {"Error_NOT_FOUND", "Error_JOB_NOT_FOUND", "Error_INTERNAL_ERROR"} <= set(schemas)
    assert {f"Error_{c.code}" for c in exc.ALL_ERRORS} <= set(schemas)


def test_the_health_probes_are_documented_and_answer_as_documented(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
