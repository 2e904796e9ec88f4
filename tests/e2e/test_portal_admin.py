"""A superuser in a real browser: server keys (secret shown once), sign-in and sign-out."""

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from redemption.models import ServerKey
from tests.e2e.helpers import role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_creates_and_revokes_a_server_key(page, live_server, admin_user, screenshot):
    page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(admin_user.username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That username and password did not match.")).to_be_visible()
    screenshot("sign-in-error")
    sign_in(page, live_server.url, admin_user)

    page.get_by_role("link", name="Server keys").click()
    expect(page.get_by_text("No server keys yet.")).to_be_visible()
    page.get_by_label("Name").fill("web shop production")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-secret").text_content()
    assert secret.startswith("rk_")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    screenshot("server-key-created")
    page.goto(live_server.url + "/server-keys/")
    assert ServerKey.objects.count() == 1
    expect(page.get_by_test_id("new-secret")).to_have_count(0)
    assert secret not in page.content()
    # Kept nowhere in clear: not in the key table, not in any session.
    assert ServerKey.objects.get().key_hash != secret
    assert all(secret not in str(s.get_decoded()) for s in Session.objects.all())

    page.get_by_role("button", name="Revoke server key web shop production").click()
    expect(page.get_by_text("Server key “web shop production” revoked")).to_be_visible()
    expect(page.get_by_role("cell", name="Revoked")).to_be_visible()
    assert ServerKey.objects.get().revoked_at is not None

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(live_server.url + "/server-keys/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
