"""URLs of the JSON API, mounted at /api/v1/ (built from the endpoint table)."""

from django.urls import path, re_path

from redemption.api import views

app_name = "api"

urlpatterns = [
    *(path(e.route, views.endpoint_view(e), name=e.name) for e in views.ENDPOINTS),
    re_path(r"^(?P<rest>(?s:.*))\Z", views.not_found, name="not_found"),
]
