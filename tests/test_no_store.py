"""Cache-Control: no-store on every portal page; static files excepted (the API: tests/api)."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from redemption.middleware import NoStoreMiddleware
from tests.e2e.helpers import populate

pytestmark = pytest.mark.django_db


def test_portal_pages_are_no_store(client, admin_user):
    data = populate()
    client.force_login(admin_user)
    pages = [
        reverse("redemption:dashboard"),
        reverse("redemption:code_type_detail", args=[data["ct"].name]),
        reverse("redemption:code_type_edit", args=[data["ct"].name]),
        reverse("redemption:code_detail", args=[data["failed"].canonical]),
        reverse("redemption:user_monitoring") + "?profile=p-42",
        reverse("redemption:audit_log"),
        reverse("redemption:server_keys"),
        "/no-such-page/",
    ]

    for url in pages:
        assert client.get(url)["Cache-Control"] == "no-store", url
    client.logout()
    assert client.get(reverse("login"))["Cache-Control"] == "no-store"
    assert client.get("/healthz")["Cache-Control"] == "no-store"


def test_static_files_keep_their_own_caching(settings):
    def static_file(_request):
        response = HttpResponse(b"body{}", content_type="text/css")
        response["Cache-Control"] = "max-age=31536000, public, immutable"
        return response

    middleware = NoStoreMiddleware(static_file)
    factory = RequestFactory()

    static = middleware(factory.get(f"/{settings.STATIC_URL.strip('/')}/redemption/portal.css"))
    page = middleware(factory.get("/design/redemption-codes/"))

    assert static["Cache-Control"] == "max-age=31536000, public, immutable"
    assert page["Cache-Control"] == "no-store"
