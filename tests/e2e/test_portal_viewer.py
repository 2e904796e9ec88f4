"""A viewer in a real browser sees everything and can change nothing."""

import pytest
from playwright.sync_api import expect

from redemption.models import AuditEvent, Code
from tests.e2e.helpers import populate, role_groups, sign_in

__all__ = ["role_groups"]  # autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


def _csrf(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


def test_a_viewer_sees_every_area_without_action_buttons(
    page, live_server, viewer_user, screenshot
):
    data = populate()
    page.set_viewport_size({"width": 1360, "height": 900})
    sign_in(page, live_server.url, viewer_user)
    expect(page.get_by_test_id("current-role")).to_have_text("Viewer")
    expect(page.get_by_role("link", name="Server keys")).to_have_count(0)
    screenshot("dashboard")

    page.get_by_role("link", name="Design › Marketplace › Redemption Codes").click()
    expect(page.get_by_role("link", name="xmas-2026")).to_be_visible()
    screenshot("inventory")
    page.get_by_role("link", name="xmas-2026").click()
    expect(page.get_by_role("heading", name="Codes")).to_be_visible()
    for label in ("Generate codes", "Import CSV", "Edit settings", "Delete codes…", "Invalidate…"):
        expect(page.get_by_role("link", name=label)).to_have_count(0)

    page.goto(f"{live_server.url}/monitoring/redemption-codes/{data['codes'][0].canonical}/")
    expect(page.get_by_text("Your role can view this code but not change it.")).to_be_visible()
    expect(page.get_by_role("button", name="Invalidate")).to_have_count(0)

    page.get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("link", name="Import").first).to_be_visible()
    screenshot("jobs")
    page.get_by_role("link", name="Import").first.click()
    expect(page.get_by_role("cell", name="INVALID_SCAN_CODE")).to_be_visible()
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("cell", name="code.invalidate").first).to_be_visible()


def test_a_viewer_forcing_a_post_gets_403_and_nothing_changes(page, live_server, viewer_user):
    data = populate()
    sign_in(page, live_server.url, viewer_user)
    code = data["codes"][0]
    audit_before = AuditEvent.objects.count()
    base = live_server.url
    token = _csrf(page)
    attempts = [
        (f"/monitoring/redemption-codes/{code.canonical}/invalidate/", {"reason": "x"}),
        (f"/monitoring/redemption-codes/{code.canonical}/activate/", {}),
        (
            "/design/redemption-codes/xmas-2026/delete-codes/",
            {"states": "Available", "confirm_name": "xmas-2026"},
        ),
        ("/design/redemption-codes/xmas-2026/generate/", {"quantity": "5"}),
        ("/server-keys/", {"name": "mine"}),
    ]
    for path, form in attempts:
        response = page.request.post(
            base + path,
            form={**form, "csrfmiddlewaretoken": token},
            headers={"Referer": base + "/"},
        )
        assert response.status == 403, path
        assert "Your role does not allow" in response.text(), path
    assert Code.objects.get(pk=code.pk).state == code.state
    assert AuditEvent.objects.count() == audit_before
    # The same page in the browser: a friendly 403 page.
    page.goto(base + "/server-keys/")
    expect(page.get_by_role("heading", name="You can't do that")).to_be_visible()
