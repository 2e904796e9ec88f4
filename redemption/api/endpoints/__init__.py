"""The endpoint table: every path of the JSON API, its operations and what they answer.

URL routing (`api/urls.py`), request dispatch (`api/dispatch.py`) and the OpenAPI document
(`api/openapi.py`) are all built from `ENDPOINTS`, so they cannot drift apart.
"""

from redemption.api import handlers
from redemption.api.auth import PUBLIC
from redemption.api.endpoints.client import CLIENT_ENDPOINTS
from redemption.api.endpoints.server import SERVER_ENDPOINTS
from redemption.api.spec import Endpoint, Operation, Reply

OPENAPI_ENDPOINT = Endpoint(
    route="openapi.json",
    name="openapi",
    operations=(
        Operation(
            method="GET",
            operation_id="getOpenApi",
            summary="This OpenAPI 3.1 document",
            handler=handlers.openapi_document,
            auth=PUBLIC,
            replies=(Reply(status=200, schema="OpenApiDocument", description="The document."),),
            tag="meta",
        ),
    ),
)

ENDPOINTS: tuple[Endpoint, ...] = (OPENAPI_ENDPOINT, *CLIENT_ENDPOINTS, *SERVER_ENDPOINTS)
