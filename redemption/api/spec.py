"""What describes an endpoint: the records the endpoint table is written in.

Routing, dispatch and the OpenAPI document are all built from these records, so the table in
`endpoints.py` is the one description of the API.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from redemption import exceptions as exc
from redemption.api.auth import Identity
from redemption.api.errors import JSON
from redemption.api.validation import Field

CSV = "text/csv"


@dataclass(frozen=True)
class Reply:
    """One documented success response."""

    status: int
    schema: str  # a component schema name
    description: str
    content_type: str = JSON
    headers: tuple[str, ...] = ()  # response headers always present


@dataclass(frozen=True)
class PathParam:
    """One path segment an endpoint's route captures."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass
class Call:
    """One authenticated, validated request as a handler sees it."""

    request: HttpRequest
    identity: Identity
    body: dict[str, Any]
    query: dict[str, Any]
    path: dict[str, str]
    # The serialised OpenAPI document. The document is built from the endpoint table, which
    # itself names the handler that serves it, so the builder is handed in at dispatch.
    openapi_document: Callable[[], bytes]
    upload: Any = None


Handler = Callable[[Call], HttpResponseBase]


@dataclass(frozen=True)
class Operation:
    """One method on one path: auth, input, handler, and what it can answer."""

    method: str
    operation_id: str
    summary: str
    handler: Handler
    auth: str
    replies: tuple[Reply, ...]
    errors: tuple[type[exc.RedemptionError], ...] = ()
    body: tuple[Field, ...] | None = None
    # Rules between the body's fields (JSON Schema if/then) for the document; checked by the
    # service the handler calls.
    body_rules: Mapping[str, Any] = field(default_factory=dict)
    csv_body: bool = False
    query: tuple[Field, ...] = ()
    fixed: Mapping[str, str] = field(default_factory=dict)
    atomic: bool = True  # store the idempotent response in the same transaction as the work
    description: str = ""
    tag: str = "server"
    # The server-key scope (rules.SERVER_KEY_SCOPES) the operation needs; None off /server/.
    scope: str | None = None
    # The handler hands the user token's minting key to a service that checks it within a
    # query it makes anyway (the redeem's rate-limit check), so the pipeline need not.
    minting_key_checked_by_service: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One path: its Django route, its URL name and the operations it offers."""

    route: str  # Django route below api/v1/; <str:name> segments are the path parameters
    name: str
    operations: tuple[Operation, ...]
    params: tuple[PathParam, ...] = ()

    @property
    def template(self) -> str:
        """The OpenAPI path, e.g. /api/v1/server/codes/{scanCode}."""
        return "/api/v1/" + re.sub(r"<\w+:(\w+)>", r"{\1}", self.route)
