"""A superuser in a real browser manages brainCloud apps, reached from the navigation."""

import pytest
from playwright.sync_api import expect

from redemption.models import AuditEvent, BraincloudApp
from tests.e2e.helpers import role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = '<img src=x onerror="window.pwned=1">'


def test_admin_adds_rotates_and_disables_a_braincloud_app(
    page, live_server, admin_user, screenshot
):
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, admin_user)
    nav = page.get_by_role("navigation", name="Main")

    nav.get_by_role("link", name="brainCloud apps").click()
    expect(page.get_by_text("No brainCloud app yet.")).to_be_visible()
    page.get_by_label("App id").fill("12345")
    page.get_by_label("Name").fill(HOSTILE)
    page.get_by_label("App secret").fill("brainCloud-secret-1")
    page.get_by_label("Allow Anonymous sign-in").check()
    page.get_by_role("button", name="Add app").click()

    expect(page.get_by_text("brainCloud app 12345 created.")).to_be_visible()
    expect(page.get_by_test_id("app-secret")).to_have_text("brainCloud-secret-1")
    screenshot("braincloud-app-created")
    nav.get_by_role("link", name="brainCloud apps").click()
    expect(page.get_by_role("cell", name=HOSTILE)).to_be_visible()  # shown as text, not run
    assert page.evaluate("window.pwned") is None
    page.get_by_role("link", name="12345").click()

    page.get_by_role("button", name="Set a new secret").click()
    expect(page.get_by_text("New secret set")).to_be_visible()
    secret = BraincloudApp.objects.get().secret
    assert secret != "brainCloud-secret-1"
    expect(page.get_by_test_id("app-secret")).to_have_text(secret)

    page.get_by_role("button", name="Disable app").click()
    expect(page.get_by_text("brainCloud app 12345 disabled; its sessions ended.")).to_be_visible()
    assert BraincloudApp.objects.get().is_enabled is False
    page.get_by_role("button", name="Enable app").click()
    expect(page.get_by_text("brainCloud app 12345 enabled.")).to_be_visible()
    assert BraincloudApp.objects.get().is_enabled is True
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert actions[-4:] == [
        "braincloud_app.create",
        "braincloud_app.update",
        "braincloud_app.update",
        "braincloud_app.update",
    ]
