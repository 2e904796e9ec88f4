"""The OpenAPI 3.1 document, generated from the endpoint table so the two cannot drift."""

import json
from functools import cache
from typing import Any

from redemption import exceptions as exc
from redemption import rules
from redemption.api import auth
from redemption.api.endpoints import ENDPOINTS
from redemption.api.errors import JSON
from redemption.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from redemption.api.idempotency import REPLAYED_HEADER
from redemption.api.schemas import SCHEMAS, error_schema, error_schema_name, ref
from redemption.api.spec import CSV, Operation
from redemption.api.validation import object_schema

ALL_ERRORS = exc.ALL_ERRORS


def _headers_for(status: int, op: Operation, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if op.method == "POST":
        headers[REPLAYED_HEADER] = {
            "description": "'true' when this is the stored answer to an earlier request "
            "with the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]},
        }
    if status == 401:
        headers["WWW-Authenticate"] = {"required": True, "schema": {"type": "string"}}
    if status == 429:
        headers["Retry-After"] = {
            "required": True,
            "description": "Seconds until a redeem may be tried again.",
            "schema": {"type": "string", "pattern": rules.whole(r"[0-9]+")},
        }
    if status == 503:
        headers["Retry-After"] = {
            "required": True,
            "description": "Seconds to wait before retrying: the database is unreachable.",
            "schema": {"type": "string", "pattern": rules.whole(r"[0-9]+")},
        }
    if status == 409 and op.method == "POST":
        headers["Retry-After"] = {
            "description": "With IDEMPOTENCY_KEY_IN_USE: seconds until a retry with the same "
            "key may run (the first request has ended, or is taken for dead).",
            "schema": {"type": "string", "pattern": rules.whole(r"[0-9]+")},
        }
    for name in extra:
        headers[name] = {"required": True, "schema": {"type": "string"}}
    return headers


def operation_errors(op: Operation) -> list[type[exc.RedemptionError]]:
    """Every error this operation can answer with (its own plus the pipeline's)."""
    found: list[type[exc.RedemptionError]] = [exc.InvalidParameterError]
    if op.auth != auth.PUBLIC:
        found += [
            exc.AuthenticationRequiredError,
            exc.InvalidCredentialsError,
            exc.ServiceUnavailableError,
        ]
    if op.scope is not None:
        found.append(exc.InsufficientScopeError)
    if op.body is not None or op.csv_body:
        found.append(exc.RequestTooLargeError)
    if op.method == "POST":
        found += [exc.IdempotencyKeyInUseError, exc.IdempotencyKeyReusedError]
    found += [*op.errors, exc.InternalError]
    unique: dict[str, type[exc.RedemptionError]] = {}
    for error in found:
        unique.setdefault(error.code, error)
    return list(unique.values())


def _operation(op: Operation, params: list[dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for reply in op.replies:
        responses[str(reply.status)] = {
            "description": reply.description,
            "headers": _headers_for(reply.status, op, reply.headers),
            "content": {reply.content_type: {"schema": ref(reply.schema)}},
        }
    by_status: dict[int, list[type[exc.RedemptionError]]] = {}
    for error in operation_errors(op):
        by_status.setdefault(error.http_status, []).append(error)
    for status, errors in sorted(by_status.items()):
        schemas = [ref(error_schema_name(e)) for e in errors]
        responses[str(status)] = {
            "description": ", ".join(e.code for e in errors),
            "headers": _headers_for(status, op),
            "content": {JSON: {"schema": schemas[0] if len(schemas) == 1 else {"oneOf": schemas}}},
        }
    parameters = list(params)
    for f in op.query:
        parameters.append(
            {"name": f.name, "in": "query", "required": f.required, "schema": f.schema()}
        )
    if op.method == "POST":
        parameters.append(
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": "Makes a retry safe: the first answer is stored for 24 hours "
                "and replayed for the same request under the same credential.",
                "schema": {"type": "string", "pattern": rules.IDEMPOTENCY_KEY_PATTERN},
            }
        )
    result: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": {
            # OpenAPI 3.1 lets a bearer scheme list the roles (here: scopes) a call needs.
            auth.SERVER: [{"serverKey": [op.scope] if op.scope else []}],
            auth.CLIENT: [{"userToken": []}],
            auth.PUBLIC: [],
        }[op.auth],
        "parameters": parameters,
        "responses": responses,
    }
    description = op.description
    if op.scope is not None:
        result["x-scope"] = op.scope
        needs = f"Needs a server key with the `{op.scope}` scope."
        description = f"{needs} {description}" if description else needs
    if description:
        result["description"] = description
    if op.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": {**object_schema(op.body), **op.body_rules}}},
        }
    if op.csv_body:
        # Any text is a CSV file to the import (bad lines become per-line errors), so the
        # body's schema constrains nothing; its size limit is a 413, not a schema rule.
        result["requestBody"] = {
            "required": True,
            "description": "CSV text (UTF-8): scanCode[,codeState][,customCodeInfo] per line, "
            "up to 200 MiB.",
            "content": {CSV: {"schema": {}}},
        }
    return result


def _probe(summary: str, schema: str, errors: list[type[exc.RedemptionError]]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": summary, "content": {JSON: {"schema": ref(schema)}}}
    }
    for error in errors:
        responses[str(error.http_status)] = {
            "description": error.code,
            "content": {JSON: {"schema": ref(error_schema_name(error))}},
        }
    return {"get": {"summary": summary, "tags": ["meta"], "security": [], "responses": responses}}


def _error_table() -> str:
    rows = [f"| {e.code} | {e.reason_code} | {e.http_status} |" for e in ALL_ERRORS]
    return "\n".join(["| code | reasonCode | HTTP |", "|---|---|---|", *rows])


DESCRIPTION = f"""\
JSON API of the Redemption Code Portal.

**Credentials.** `Authorization: Bearer <credential>`. Paths under `/api/v1/server/` take a
server key (`rk_…`, created with `manage.py create_server_key <name>`, shown once); paths under
`/api/v1/client/` take a user token (`ut_…`) minted by `POST /api/v1/server/user-tokens`.
No credential: 401 `AUTHENTICATION_REQUIRED`. Malformed, unknown, tampered, revoked, expired
or the wrong kind for the path: 401 `INVALID_CREDENTIALS`. A user token minted with a server key
dies with that key (revoked or expired).

**Scopes.** A server key holds scopes ({", ".join(f"`{s}`" for s in rules.SERVER_KEY_SCOPES)};
every one unless it was created with fewer). Each server operation names the scope it needs
(`x-scope`, and in its security requirement); a key without it gets 403 `INSUFFICIENT_SCOPE`.

**Input.** JSON bodies need `Content-Type: application/json` (UTF-8) and at most 1 MiB
(413 `REQUEST_TOO_LARGE`); the CSV import takes `text/csv` up to 200 MiB. Unknown fields,
wrong types, values out of range and malformed JSON give 400 `INVALID_PARAMETER_VALUE` with
`details.fields` naming each bad field. Unknown query parameters are refused the same way.

**Errors** always look like
`{{"error": {{"code", "reasonCode", "message", "details"}}}}`. Any `/api/v1/` path that names no
endpoint answers 404 `NOT_FOUND` (reasonCode 40404); a method a path does not offer answers
405 `METHOD_NOT_ALLOWED` with an `Allow` header. An unexpected failure answers 500
`INTERNAL_ERROR` (reasonCode 0) and is logged; 503 `SERVICE_UNAVAILABLE` means the database
cannot be reached: retry after `Retry-After` seconds, nothing was half-applied.

**Idempotency.** Every POST accepts `Idempotency-Key` ({rules.IDEMPOTENCY_KEY_RULE}),
scoped to the credential and kept at least 24 hours. A retry with the same key, method, path
and body gets the first status and body again with `Idempotent-Replayed: true`; the same key
on a different request gets 422 `IDEMPOTENCY_KEY_REUSED`; a retry while the first is still
running gets 409 `IDEMPOTENCY_KEY_IN_USE` with `Retry-After`. A request that died (its
server was killed, or the database went away) does not block its key: after 30 seconds a retry
takes the key over. Answers 429, 500 and 503 are not stored, and a request refused by input
validation is not remembered either.

**Rate limit.** Failed redeems (the outcomes that name the code) count per profile and, for
user tokens, per client IP (an IPv6 client per /64); past the limit a redeem answers 429
`REDEMPTION_CODE_MAX_FAILED_EXCEEDED_FOR_USER` with `Retry-After`.

**Webhooks.** A fulfilment URL must be https (http only where the operator allows it) and its
host must resolve to public addresses only, else 400 `FULFILLMENT_URL_FORBIDDEN`. When a webhook
fails, the redeem answers 502 `REDEMPTION_CODE_SCRIPT_FAILURE` without the transport detail,
which only staff see on the attempt (`GET /server/codes/{{scanCode}}`).

**Caching.** Every response carries `Cache-Control: no-store`.

"""


@cache
def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        params = [
            {
                "name": p.name,
                "in": "path",
                "required": True,
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in endpoint.params
        ]
        paths[endpoint.template] = {
            op.method.lower(): _operation(op, params) for op in endpoint.operations
        }
    paths["/healthz"] = _probe("The process is up", "Health", [])
    paths["/readyz"] = _probe("The database answers", "Ready", [exc.ServiceUnavailableError])
    schemas = dict(SCHEMAS)
    for error in ALL_ERRORS:
        schemas[error_schema_name(error)] = error_schema(error)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Redemption Code Portal API",
            "version": "1",
            "description": DESCRIPTION + "**Error catalogue**\n\n" + _error_table(),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "client", "description": "Called by a client app for one end user."},
            {"name": "server", "description": "Called by the client app's backend."},
            {"name": "meta", "description": "This document and health probes."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "serverKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A server key (rk_…).",
                },
                "userToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A user token (ut_…) for one profile.",
                },
            },
            "responses": {
                "NotFound": {
                    "description": "No endpoint at this path (any method).",
                    "content": {JSON: {"schema": ref(error_schema_name(exc.PathNotFoundError))}},
                },
                "MethodNotAllowed": {
                    "description": "The path exists but not with this method.",
                    "headers": {"Allow": {"required": True, "schema": {"type": "string"}}},
                    "content": {
                        JSON: {"schema": ref(error_schema_name(exc.MethodNotAllowedError))}
                    },
                },
            },
        },
    }


@cache
def document_bytes() -> bytes:
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode()
