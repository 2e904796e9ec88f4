"""URLs of the JSON API, mounted at /api/v1/ (built from the endpoint table)."""

from django.urls import path, re_path

from redemption.api.dispatch import endpoint_view, not_found
from redemption.api.endpoints import ENDPOINTS
from redemption.api.openapi import document_bytes

app_name = "api"

urlpatterns = [
    *(
        path(e.route, endpoint_view(e, openapi_document=document_bytes), name=e.name)
        for e in ENDPOINTS
    ),
    re_path(r"^(?P<rest>(?s:.*))\Z", not_found, name="not_found"),
]
