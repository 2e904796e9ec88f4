"""The request pipeline every endpoint shares, and the JSON 404 for paths that name none.

One Django view per endpoint picks the operation by method, then `_handle` authenticates,
checks the body and query against the operation's fields, and runs the handler, under the
request's Idempotency-Key when it sends one. Every failure becomes the API's error envelope.
"""

import io
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from redemption import exceptions as exc
from redemption.api import auth, idempotency
from redemption.api.errors import JSON, error_response
from redemption.api.spec import CSV, Call, Endpoint, Operation
from redemption.api.validation import clean_object, clean_query, parse_json_object


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _require_content_type(request: HttpRequest, expected: str) -> None:
    content_type = (request.content_type or "").lower()
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if content_type != expected or charset.replace("_", "-") not in {"utf-8", "utf8"}:
        raise exc.invalid_fields({"Content-Type": f"must be {expected} (UTF-8)"})


def _handle(
    request: HttpRequest,
    op: Operation,
    path: dict[str, str],
    openapi_document: Callable[[], bytes],
) -> HttpResponseBase:
    identity = auth.authenticate(request, op.auth)
    auth.require_scope(identity, op.scope)
    key = request.headers.get(idempotency.HEADER) if request.method == "POST" else None
    if key is not None or not op.minting_key_checked_by_service:
        identity = auth.check_minting_key(identity)
    try:
        query = clean_query(op.query, request.GET)
        body: dict[str, Any] = {}
        raw = b""
        upload = None
        if op.csv_body:
            if _content_length(request) > settings.IMPORT_MAX_BODY_BYTES:
                limit = settings.IMPORT_MAX_BODY_BYTES
                raise exc.RequestTooLargeError(details={"limitBytes": limit})
            _require_content_type(request, CSV)
            hashing = idempotency.HashingReader(
                request,
                method=request.method or "POST",
                path=request.get_full_path(),
                limit=settings.IMPORT_MAX_BODY_BYTES,
            )
            upload = io.BufferedReader(hashing, buffer_size=1 << 16)
        elif op.body is not None:
            if _content_length(request) > settings.API_MAX_BODY_BYTES:
                limit = settings.API_MAX_BODY_BYTES
                raise exc.RequestTooLargeError(details={"limitBytes": limit})
            _require_content_type(request, JSON)
            raw = request.body
            body = clean_object(op.body, parse_json_object(raw), fixed=op.fixed)
    except Exception:
        auth.check_minting_key(identity)  # a dead credential is told before bad input
        raise
    call = Call(
        request=request,
        identity=identity,
        body=body,
        query=query,
        path=path,
        openapi_document=openapi_document,
        upload=upload,
    )
    if key is None:
        return op.handler(call)
    key = idempotency.check_key(key)

    def work() -> HttpResponse:
        try:
            return cast(HttpResponse, op.handler(call))  # POST answers are never streamed
        except exc.RedemptionError as error:
            return error_response(error)

    if op.csv_body:
        return idempotency.run(
            credential=identity.scope,
            key=key,
            work=work,
            hash_now=None,
            hash_later=hashing.hexdigest,
            atomic=False,
        )
    return idempotency.run(
        credential=identity.scope,
        key=key,
        work=work,
        hash_now=idempotency.fingerprint(request.method or "POST", request.get_full_path(), raw),
        atomic=op.atomic,
    )


def endpoint_view(
    endpoint: Endpoint, *, openapi_document: Callable[[], bytes]
) -> Callable[..., HttpResponseBase]:
    """The one Django view of an endpoint: method dispatch, then the shared request pipeline.

    `openapi_document` returns the serialised OpenAPI document, for the handler that serves it.
    """
    by_method = {op.method: op for op in endpoint.operations}
    allow = ", ".join(by_method)

    @csrf_exempt
    def view(request: HttpRequest, **path: str) -> HttpResponseBase:
        op = by_method.get(request.method or "")
        if op is None:
            response = error_response(
                exc.MethodNotAllowedError(details={"allowed": list(by_method)})
            )
            response["Allow"] = allow
            return response
        try:
            return _handle(request, op, path, openapi_document)
        except Exception as error:
            return error_response(error)

    view.__name__ = f"api_{endpoint.name}"
    return view


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any /api/v1/ path that names no endpoint."""
    return error_response(exc.PathNotFoundError())
