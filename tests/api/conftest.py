"""API test fixtures: a test client that checks every response against the OpenAPI document."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from django.test import Client
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from redemption.actors import Actor
from redemption.api import openapi
from redemption.services import keys

DOC_URI = "urn:redemption-openapi"


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class Seen:
    method: str
    template: str | None
    status: int
    code: str | None


class OpenApiChecker:
    """Validates a response against the operation, status and media type the document gives."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.registry = Registry().with_resource(
            DOC_URI, Resource(contents=doc, specification=DRAFT202012)
        )
        self.templates = [
            (re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(t))), t) for t in doc["paths"]
        ]
        self._validators: dict[str, Draft202012Validator] = {}
        self.seen: list[Seen] = []

    def validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            self._validators[pointer] = Draft202012Validator(
                {"$ref": DOC_URI + pointer}, registry=self.registry
            )
        return self._validators[pointer]

    def template_for(self, path: str) -> str | None:
        decoded = unquote(urlsplit(path).path)
        for regex, template in self.templates:
            if regex.fullmatch(decoded):
                return template
        return None

    def check(self, method: str, path: str, response: Any, body: bytes) -> None:
        status = response.status_code
        content_type = response.get("Content-Type", "").split(";")[0].strip()
        template = self.template_for(path)
        data = json.loads(body) if content_type == "application/json" else None
        code = data["error"]["code"] if isinstance(data, dict) and "error" in data else None
        self.seen.append(Seen(method, template, status, code))
        assert status != 500, f"{method} {path} -> 500 {body[:500]!r}"
        if template is None:
            assert urlsplit(path).path.startswith("/api/v1/"), path
            assert status == 404, f"{method} {path}: unknown path answered {status}"
            pointer = _pointer("components", "schemas", "Error_NOT_FOUND")
        else:
            operation = self.doc["paths"][template].get(method.lower())
            if operation is None:
                assert status == 405, f"{method} {template}: undocumented method got {status}"
                assert response.has_header("Allow")
                pointer = _pointer("components", "schemas", "Error_METHOD_NOT_ALLOWED")
            else:
                documented = operation["responses"].get(str(status))
                assert documented is not None, (
                    f"{method} {template} answered {status} ({code}), which is not documented: "
                    f"{body[:300]!r}"
                )
                assert content_type in documented["content"], (
                    f"{method} {template} {status}: content type {content_type!r} not documented"
                )
                for name, header in documented.get("headers", {}).items():
                    if header.get("required"):
                        assert response.has_header(name), f"{method} {template}: no {name} header"
                pointer = _pointer(
                    "paths",
                    template,
                    method.lower(),
                    "responses",
                    str(status),
                    "content",
                    content_type,
                    "schema",
                )
        if data is not None or content_type == "application/json":
            errors = sorted(self.validator(pointer).iter_errors(data), key=str)
            assert not errors, (
                f"{method} {path} {status} does not match the document: "
                + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
            )


@dataclass
class ApiResponse:
    """What a test needs from a response: status, headers, body bytes and parsed JSON."""

    status: int
    headers: Any
    content: bytes
    raw: Any = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def error(self) -> dict[str, Any]:
        return self.json()["error"]

    @property
    def code(self) -> str | None:
        if not self.raw.get("Content-Type", "").startswith("application/json"):
            return None
        data = self.json()
        return data.get("error", {}).get("code") if isinstance(data, dict) else None

    def __getitem__(self, header: str) -> str:
        return self.raw[header]

    def has_header(self, header: str) -> bool:
        return self.raw.has_header(header)


class ApiClient:
    """Django's test client for the JSON API; every response is checked against the document."""

    def __init__(
        self, checker: OpenApiChecker, client: Client, credential: str | None = None
    ) -> None:
        self.checker = checker
        self.client = client
        self.credential = credential

    def as_(self, credential: str | None) -> "ApiClient":
        return ApiClient(self.checker, self.client, credential)

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        data: bytes | str | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> ApiResponse:
        all_headers = dict(headers or {})
        if self.credential is not None and "Authorization" not in all_headers:
            all_headers["Authorization"] = f"Bearer {self.credential}"
        if json_body is not None:
            data = json.dumps(json_body)
            content_type = content_type or "application/json"
        response = self.client.generic(
            method,
            path,
            data=data if data is not None else b"",
            content_type=content_type or "application/octet-stream",
            headers=all_headers,
            **extra,
        )
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content)
        else:
            body = response.content
        self.checker.check(method, path, response, body)
        return ApiResponse(response.status_code, response.headers, body, response)

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, json_body, **kwargs)

    def put(self, path: str, json_body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("PUT", path, json_body, **kwargs)

    def patch(self, path: str, json_body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("PATCH", path, json_body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(scope="session")
def checker() -> OpenApiChecker:
    return OpenApiChecker(openapi.document())


@pytest.fixture
def api(checker: OpenApiChecker) -> ApiClient:
    """An unauthenticated API client (add a credential with .as_(...))."""
    return ApiClient(checker, Client())


@pytest.fixture
def server_secret(db) -> str:
    _, secret = keys.server_key_create(actor=Actor.system("test"), name="backend")
    return secret


@pytest.fixture
def server_api(api: ApiClient, server_secret: str) -> ApiClient:
    """An API client holding a server key."""
    return api.as_(server_secret)


def mint(profile_id: str = "p-42", name: str | None = "Ann", ttl: int = 3600) -> str:
    return keys.user_token_mint(
        actor=Actor.system("test"), profile_id=profile_id, profile_name=name, ttl_seconds=ttl
    ).token


@pytest.fixture
def user_token(db) -> str:
    return mint()


@pytest.fixture
def user_api(api: ApiClient, user_token: str) -> ApiClient:
    """An API client holding a user token for profile p-42 (Ann)."""
    return api.as_(user_token)


@pytest.fixture
def webhook() -> Iterator[Any]:
    """A real HTTP fulfilment webhook on 127.0.0.1."""
    from tests.webhook import WebhookServer

    server = WebhookServer().start()
    yield server
    server.stop()
